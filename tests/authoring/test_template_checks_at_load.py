"""Template problems are found by guard check, not by the first request that needs them."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from authoring_helpers import guard, write

from guard import providers
from guard.synth.handlers import Registry, handlers_in

PACK = """
    pack: tpl
    hosts: [tpl.test]
    rules:
      - id: tpl.thing
        action: simulate
        respond: {RESPOND}
"""


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], respond: str) -> tuple[int, str]:
    path = write(tmp_path / "tpl.yaml", PACK.replace("{RESPOND}", respond))
    code, _, err = guard(capsys, "check", str(path), "--no-builtin")
    return code, err.replace(str(tmp_path) + "/", "")


@pytest.mark.parametrize(("respond", "files", "expected"), [
    ("{template: tpl/missing.yaml}", {},
     "tpl.yaml:6:25: template 'tpl/missing.yaml' not found (looked for "),
    ("{template: tpl/thing.yaml}", {"tpl/thing.yaml": "id: '{{ ids.hex(4) '\n"},
     "tpl.yaml:6:25: template tpl/thing.yaml:1: unexpected end of template"),
    ("{template: tpl/thing.json.j2}", {"tpl/thing.json.j2": '{"a": {% if %}1{% endif %}}'},
     "tpl.yaml:6:25: template tpl/thing.json.j2:1: Expected an expression"),
    ("{template: tpl/thing.yaml}", {"tpl/thing.yaml": "a: [1,\n"},
     "tpl.yaml:6:25: template tpl/thing.yaml: invalid YAML"),
    ("{template: ../outside.yaml}", {},
     "tpl.yaml:6:25: template '../outside.yaml' must be a relative path"),
    ("{body: {a: '{{ 1 + }}'}}", {}, "tpl.yaml:6:25: template syntax error"),
    ("{headers: {X-A: '{{ }'}, body: {}}", {}, "tpl.yaml:6:30: template syntax error"),
])
def test_guard_check_fails_for_a_missing_or_broken_template(tmp_path, capsys, respond, files,
                                                            expected):
    for name, text in files.items():
        write(tmp_path / name, text)
    code, err = check(tmp_path, capsys, respond)
    assert code == 1
    assert any(line.startswith(expected) for line in err.splitlines()), err


def test_a_template_in_a_templates_folder_beside_the_rules_is_found(tmp_path, capsys):
    write(tmp_path / "templates" / "tpl" / "thing.yaml", "id: \"{{ ids.hex(4) }}\"\n")
    code, err = check(tmp_path, capsys, "{template: tpl/thing.yaml}")
    assert code == 0, err
    # and loading the directory does not mistake the YAML template for a rule file
    code, out, err = guard(capsys, "check", str(tmp_path), "--no-builtin")
    assert code == 0 and out.startswith("ok: 1 rules in 1 file(s)"), err


HANDLERS = '''
from guard.synth.handlers import handler


def _helper(ctx):
    return ctx.render("tpl/helper.yaml")


@handler
def make(ctx):
    return ctx.json(200, {"a": ctx.render("tpl/made.yaml"), "b": _helper(ctx)})
'''


@pytest.fixture
def provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A provider with real source on disk (the loader reads it), registered beside the
    built-in handlers for the test."""
    name = "authoringtest"
    source = tmp_path / f"{name}.py"
    source.write_text(textwrap.dedent(HANDLERS))
    spec = importlib.util.spec_from_file_location(f"tests_provider_{name}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    monkeypatch.setattr(providers, "HANDLERS",
                        Registry([providers.HANDLERS, handlers_in(name, module)]))
    yield name
    del sys.modules[spec.name]


def test_templates_a_handler_renders_by_name_are_checked_at_load(tmp_path, capsys, provider):
    write(tmp_path / "templates" / "tpl" / "made.yaml", "made: true\n")
    code, err = check(tmp_path, capsys, f"{{handler: {provider}.make}}")
    assert code == 1
    assert (f"tpl.yaml:6:24: handler {provider}.make renders template 'tpl/helper.yaml' "
            "not found") in err
    write(tmp_path / "templates" / "tpl" / "helper.yaml", "helper: '{{ oops( }}'\n")
    code, err = check(tmp_path, capsys, f"{{handler: {provider}.make}}")
    assert code == 1 and "renders template" in err and "tpl/helper.yaml:1" in err
    write(tmp_path / "templates" / "tpl" / "helper.yaml", "helper: true\n")
    code, err = check(tmp_path, capsys, f"{{handler: {provider}.make}}")
    assert code == 0, err
