"""guard check and guard explain: exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys

from guard.cli import main


def test_check_accepts_the_builtin_packs(capsys):
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("ok:")


def test_check_reports_problems_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pack: x\nhosts: [a.test]\nrules:\n  - id: x.a\n    action: nope\n")
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:5:13: rules.0.action: unknown action 'nope'" in err


def test_explain_names_the_rule_and_the_near_misses(capsys):
    assert main(["explain", "POST", "https://api.stripe.com/v1/customers",
                 "-H", "Authorization: Bearer sk_test_1", "-d", "email=a@b.c"]) == 0
    out = capsys.readouterr().out
    assert "decided by: stripe.customers.create" in out and "action:     simulate" in out
    assert "checked first, for every host, did not match: stripe.live-key" in out
    assert main(["explain", "POST", "https://api.stripe.com/v1/customers", "--json",
                 "-H", "Authorization: Bearer sk_test_1", "-d", "email=a@b.c"]) == 0
    [live] = [m for m in json.loads(capsys.readouterr().out)["near_misses"]
              if m["rule"] == "stripe.live-key"]
    assert live["any_host"] and live["why"].startswith("the credential sent does not match")
    assert "sk_test_1" not in out


def test_explain_json_for_an_unknown_host(capsys):
    assert main(["explain", "GET", "https://nowhere.test/", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["rule"], data["action"]) == ("guard.default-deny", "block")


def test_the_console_script_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "guard", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("guard ")


def test_jail_help_lists_only_options_that_apply_to_a_jail(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["jail", "--help"])
    text = capsys.readouterr().out
    assert "--audit PATH" in text and "--rules PATH" in text
    for flag in ("--listen-host", "--listen-port", "--mode", "--dns-listen", "--dns-answer"):
        assert flag not in text, flag
    assert main(["jail", "--mode", "regular", "--", "true"]) == 2
    assert "--mode: set by the jail" in capsys.readouterr().err


def test_state_and_outbox_read_guard_runs_default_state_and_say_when_it_is_missing(
        tmp_path, monkeypatch, capsys):
    from guard.world import MemoryStore

    for name in [n for n in __import__("os").environ if n.startswith("GUARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["state", "list"]) == 1
    assert f"no state directory {tmp_path / '.guard' / 'state'}" in capsys.readouterr().err
    assert main(["state", "list", "--state", str(tmp_path / "nope")]) == 1
    assert f"no state directory {tmp_path / 'nope'}" in capsys.readouterr().err
    assert main(["outbox"]) == 1
    assert "no state directory" in capsys.readouterr().err

    store = MemoryStore(state_dir=tmp_path / ".guard" / "state")
    world = store.world("10.0.0.7")
    with world.transaction():
        world.put("stripe.customers", {"email": "a@example.com"}, id="cus_1")
    store.flush(world)
    assert main(["state", "list"]) == 0
    assert capsys.readouterr().out == "10.0.0.7\t1 objects\n"
    monkeypatch.setenv("GUARD_STATE", "off")
    assert main(["state", "list"]) == 2
    assert "say which with --state DIR" in capsys.readouterr().err
