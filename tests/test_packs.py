"""load_packs: the rules and their responses in one load, every problem of both at once."""

from __future__ import annotations

import textwrap

import pytest

from guard.errors import RuleError
from guard.packs import load_packs


def test_a_rule_problem_and_a_response_problem_are_reported_together(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""
        pack: t
        hosts: [t.test]
        rules:
          - id: t.bad
            action: explode
          - id: t.missing
            action: simulate
            respond: {template: t/none.yaml}
    """))
    consulted: set[str] = set()
    with pytest.raises(RuleError) as info:
        load_packs([path], builtin=False, consulted=consulted)
    messages = [p.message for p in info.value.problems]
    assert any("unknown action 'explode'" in m for m in messages)
    assert any("template 't/none.yaml' not found" in m for m in messages)
    assert str(tmp_path / "templates" / "t" / "none.yaml") in consulted  # watched even so


def test_the_engine_and_the_responses_belong_to_one_load(builtin_packs):
    rules = set(builtin_packs.engine.ruleset.rules)
    assert set(builtin_packs.responders) <= rules
    simulate = {r for r in rules if r.action == "simulate"}
    assert simulate == set(builtin_packs.responders)
