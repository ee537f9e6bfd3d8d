"""guard's options are declared once (guard/options.py): flags, GUARD_* variables and the
config file all come from the one model, with command line > environment > file > defaults."""

from __future__ import annotations

import argparse
from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from guard import options
from guard.cli import main
from guard.cli.run import config_from
from guard.errors import OptionsError
from guard.options import Opt, Options, SandboxFrom


def run_args(*argv: str) -> argparse.Namespace:
    """The namespace `guard run ARGV` parses to (without starting anything)."""
    p = argparse.ArgumentParser()
    options.add_flags(p, options.Options)
    return p.parse_args(list(argv))


def home_config(tmp_path):
    """~/.guard/guard.yaml of the test's HOME (the config file guard finds by itself)."""
    path = tmp_path / "home" / ".guard" / "guard.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def no_outside_config(monkeypatch, tmp_path):
    """No GUARD_* variable or guard.yaml of the machine running the tests counts here."""
    for name in list(__import__("os").environ):
        if name.startswith("GUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_one_new_field_appears_in_the_help_the_environment_and_the_config_file(
        monkeypatch, tmp_path, capsys):
    class Extended(Options):
        exercise_limit: Annotated[int, Opt(metavar="N")] = Field(
            7, description="an option added as an exercise")

    monkeypatch.setattr(options, "Options", Extended)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "--exercise-limit N" in help_text
    assert "an option added as an exercise (default: 7) [env GUARD_EXERCISE_LIMIT]" in " ".join(
        help_text.split())

    assert config_from(run_args()).exercise_limit == 7  # type: ignore[attr-defined]
    assert config_from(run_args("--exercise-limit", "9")).exercise_limit == 9  # type: ignore
    monkeypatch.setenv("GUARD_EXERCISE_LIMIT", "11")
    assert config_from(run_args()).exercise_limit == 11  # type: ignore[attr-defined]
    monkeypatch.delenv("GUARD_EXERCISE_LIMIT")
    home_config(tmp_path).write_text("exercise-limit: 13\n")
    assert config_from(run_args()).exercise_limit == 13  # type: ignore[attr-defined]


def test_every_option_has_a_flag_a_variable_and_a_config_key_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, field in Options.model_fields.items():
        flag = options.flag_name(name)
        assert flag in text or f"--no-{name.replace('_', '-')}" in text, name
        assert f"[env {options.env_name(name)}]" in text, name
        assert field.description, f"{name} has no help"
    assert "--config FILE" in text


def test_the_command_line_beats_the_environment_which_beats_the_file(monkeypatch, tmp_path):
    config = home_config(tmp_path)
    config.write_text("listen_port: 7001\nseed: 1\nquiet: true\naudit-body-limit: 1KiB\n")
    monkeypatch.setenv("GUARD_LISTEN_PORT", "7002")
    monkeypatch.setenv("GUARD_SEED", "2")
    opts = config_from(run_args("--listen-port", "7003"))
    assert opts.listen_port == 7003  # command line
    assert opts.seed == 2  # environment over the file
    assert opts.quiet is True and opts.audit_body_limit == 1024  # the file
    assert opts.listen_host == "127.0.0.1"  # default
    assert options.PRECEDENCE == ("command line", "environment", "config file", "defaults")


def test_a_flag_can_turn_back_what_the_environment_turned_off(monkeypatch):
    monkeypatch.setenv("GUARD_GUARD_HEADERS", "false")
    assert config_from(run_args()).guard_headers is False
    assert config_from(run_args("--guard-headers")).guard_headers is True


def test_text_means_the_same_in_every_source(monkeypatch, tmp_path):
    from_flag = config_from(run_args("--audit-body-limit", "64KiB", "--dns-listen", ":53",
                                     "-r", "a.yaml", "-r", "b.yaml"))
    monkeypatch.setenv("GUARD_AUDIT_BODY_LIMIT", "64KiB")
    monkeypatch.setenv("GUARD_DNS_LISTEN", ":53")
    monkeypatch.setenv("GUARD_RULES", "a.yaml, b.yaml")
    from_env = config_from(run_args())
    for name in list(__import__("os").environ):
        if name.startswith("GUARD_"):
            monkeypatch.delenv(name)
    home_config(tmp_path).write_text(
        "audit_body_limit: 64KiB\ndns_listen: ':53'\nrules: [a.yaml, b.yaml]\n")
    from_file = config_from(run_args())
    for opts in (from_flag, from_env, from_file):
        assert opts.audit_body_limit == 65536
        assert opts.dns_listen == ("0.0.0.0", 53)
        assert opts.rules == ["a.yaml", "b.yaml"]


def test_a_list_on_the_command_line_replaces_the_default_instead_of_adding_to_it():
    assert config_from(run_args()).mode == ["regular"]
    assert config_from(run_args("--mode", "transparent")).mode == ["transparent"]


@pytest.mark.parametrize("text, problem", [
    ("listen_port: nope\n", "guard.yaml:1:1: listen_port: Input should be a valid integer"),
    ("quiet: true\nlisten-prot: 1\n", "guard.yaml:2:1: unknown option 'listen-prot' "
                                      "(did you mean 'listen_port'?)"),
    ("sandbox_from: everyone\n", "guard.yaml:1:1: sandbox_from: Input should be 'client', "
                                 "'header' or 'proxy-user'"),
    ("audit_body_limit: lots\n", "guard.yaml:1:1: audit_body_limit: not a size"),
    ("- a\n- b\n", "guard.yaml:1:1: a config file is a mapping of option: value"),
    ("seed: [1\n", "guard.yaml:2:1: not valid YAML"),
])
def test_a_bad_config_file_names_the_file_line_and_column(tmp_path, text, problem):
    home_config(tmp_path).write_text(text)
    with pytest.raises(OptionsError) as e:
        config_from(run_args())
    assert problem in "\n".join(e.value.problems)


def test_a_bad_variable_names_the_variable(monkeypatch):
    monkeypatch.setenv("GUARD_SEED", "lucky")
    with pytest.raises(OptionsError) as e:
        config_from(run_args())
    assert e.value.problems == ["GUARD_SEED=lucky: seed: Input should be a valid integer, "
                                "unable to parse string as an integer"]


def test_guard_run_with_a_bad_option_does_not_start(monkeypatch, capsys):
    monkeypatch.setenv("GUARD_LISTEN_PORT", "70000")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "GUARD_LISTEN_PORT=70000: listen_port: Input should be less than or equal to 65535" in err
    assert "not starting" in err


def test_the_config_file_is_named_by_flag_or_variable_or_found(monkeypatch, tmp_path):
    named = tmp_path / "elsewhere.yaml"
    named.write_text("seed: 5\n")
    assert config_from(run_args("--config", str(named))).seed == 5
    monkeypatch.setenv("GUARD_CONFIG", str(named))
    assert config_from(run_args()).seed == 5
    monkeypatch.delenv("GUARD_CONFIG")
    home_config(tmp_path).write_text("seed: 6\n")
    assert config_from(run_args()).seed == 6
    (tmp_path / "guard.yaml").write_text("seed: 7\n")  # where an agent may write: not read
    assert config_from(run_args()).seed == 6
    with pytest.raises(OptionsError, match="no such config file"):
        config_from(run_args("--config", str(tmp_path / "missing.yaml")))


def test_building_options_in_code_ignores_the_environment(monkeypatch):
    monkeypatch.setenv("GUARD_SEED", "9")
    assert Options(listen_port=0).seed is None
    assert Options(sandbox_from="header").sandbox_from is SandboxFrom.HEADER


def test_paths_are_expanded_and_options_are_immutable(tmp_path):
    opts = Options(confdir="~/x")
    assert not str(opts.confdir).startswith("~") and opts.ca.name == "mitmproxy-ca-cert.pem"
    with pytest.raises(ValidationError):
        opts.seed = 3  # type: ignore[misc]


def test_guard_ca_reads_the_confdir_from_the_same_sources(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GUARD_CONFDIR", str(tmp_path / "ca-here"))
    assert main(["ca", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "ca-here" / "mitmproxy-ca-cert.pem")


def test_the_docstring_examples_hold():
    import doctest

    result = doctest.testmod(options)
    assert result.failed == 0 and result.attempted > 0


def test_the_audit_log_and_the_state_journal_live_in_the_confdir_by_default(tmp_path):
    opts = config_from(run_args("--confdir", str(tmp_path / "c")))
    assert opts.audit == tmp_path / "c" / "audit" / "audit.jsonl"
    assert opts.state == tmp_path / "c" / "state"
    assert Options(confdir=tmp_path).audit == tmp_path / "audit" / "audit.jsonl"


@pytest.mark.parametrize("how", ["flag", "env", "file"])
def test_off_turns_the_audit_log_and_the_state_journal_off_from_every_source(
        how, monkeypatch, tmp_path):
    if how == "flag":
        opts = config_from(run_args("--audit", "off", "--state", "off"))
    elif how == "env":
        monkeypatch.setenv("GUARD_AUDIT", "off")
        monkeypatch.setenv("GUARD_STATE", "none")
        opts = config_from(run_args())
    else:
        home_config(tmp_path).write_text("audit: off\nstate: null\n")
        opts = config_from(run_args())
    assert opts.audit is None and opts.state is None


@pytest.mark.parametrize("how", ["flag", "env", "file"])
def test_the_fast_path_is_on_by_default_and_every_source_turns_it_off(how, monkeypatch,
                                                                      tmp_path):
    assert config_from(run_args()).fast_path is True
    assert Options().fast_path is True
    if how == "flag":
        opts = config_from(run_args("--no-fast-path"))
    elif how == "env":
        monkeypatch.setenv("GUARD_FAST_PATH", "0")
        opts = config_from(run_args())
    else:
        home_config(tmp_path).write_text("fast_path: false\n")
        opts = config_from(run_args())
    assert opts.fast_path is False


def test_worlds_in_redis_are_not_journaled_by_default():
    assert config_from(run_args("--store", "redis://127.0.0.1:1/0")).state is None


def test_an_audit_key_without_an_audit_log_is_an_error(tmp_path):
    with pytest.raises(OptionsError) as e:
        config_from(run_args("--audit", "off", "--audit-key", str(tmp_path / "k")))
    assert "--audit-key signs the audit log, and there is none" in str(e.value)
