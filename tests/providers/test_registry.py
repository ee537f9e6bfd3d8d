"""The built-in providers: one package each, found by looking, wired only by the registry."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from guard import providers
from guard.cli import main
from guard.packs import load_packs
from guard.request import Request
from guard.resources import builtin_packs, builtin_templates, providers_dir
from guard.synth.simulator import Simulator
from guard.world import MemoryStore

PROVIDERS = sorted(d.name for d in providers_dir().iterdir() if (d / "__init__.py").is_file())


def test_every_provider_package_has_a_pack_and_is_registered():
    assert PROVIDERS == sorted(p.parent.name for p in builtin_packs())
    source = Path(providers.__file__).read_text()
    imported = {alias.name for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module == "guard.providers"
                for alias in node.names}
    assert imported == set(PROVIDERS)
    for name in PROVIDERS:
        table = getattr(providers, name).HANDLERS
        assert set(table) <= set(providers.HANDLERS)


def test_the_built_in_rules_name_every_registered_handler_and_nothing_else(builtin_rules):
    named = {rule.respond.handler for lp in builtin_rules.packs for rule in lp.pack.rules
             if rule.respond is not None and rule.respond.handler is not None}
    assert named == set(providers.HANDLERS)


def test_template_folders_are_found_per_provider():
    folders = builtin_templates()
    assert set(folders) <= set(PROVIDERS) and "github" in folders
    assert all(f == providers_dir() / name / "templates" for name, f in folders.items())


def test_any_pack_may_use_a_provider_template_and_its_own_comes_first(tmp_path):
    pack = tmp_path / "mine.yaml"
    pack.write_text("""
pack: mine
hosts: [mine.test]
rules:
  - id: mine.user
    action: simulate
    respond: {template: github/user.yaml}
""")
    load_packs([pack], builtin=False)  # found: guard/providers/github/templates/user.yaml
    own = tmp_path / "templates" / "github" / "user.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("login: mine\n")
    packs = load_packs([pack], builtin=False)
    req = Request.build("GET", "https://mine.test/")
    out = Simulator(MemoryStore(seed=1)).respond(packs.engine.decide(req), req,
                                                 packs.responders)
    assert json.loads(out.response.body) == {"login": "mine"}


def test_guard_check_names_every_pack_it_loaded_by_a_path_that_opens(capsys):
    assert main(["check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok: ") and lines[0].endswith(f"in {len(PROVIDERS)} file(s)")
    listed = [Path(line.strip().split(": pack ")[0]) for line in lines[1:]]
    assert listed == builtin_packs()
    assert all(p.is_file() and p.name == "pack.yaml" for p in listed)
