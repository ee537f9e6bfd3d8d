"""Responses are compiled apart from the rules, for the rule objects of one rule set."""

from __future__ import annotations

import textwrap

from guard.providers import HANDLERS
from guard.resources import builtin_templates
from guard.rules.loader import read_rules
from guard.synth.responders import Responders, compile_responders

PACK = """
    pack: t
    hosts: [t.test]
    rules:
      - id: t.ok
        action: simulate
        respond: {body: {ok: true}}
      - id: t.blocked
        action: block
      - id: t.missing
        action: simulate
        respond: {template: t/none.yaml}
"""


def compiled(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(PACK))
    ruleset, problems = read_rules([path], builtin=False)
    assert problems == []
    return ruleset, *compile_responders(ruleset, templates=builtin_templates(),
                                        handlers=HANDLERS)


def test_every_simulate_rule_that_compiles_gets_its_response_and_nothing_else(tmp_path):
    ruleset, responders, problems = compiled(tmp_path)
    by_id = ruleset.by_id
    assert set(responders) == {by_id["t.ok"]}
    assert by_id["t.blocked"] not in responders
    assert responders[by_id["t.ok"]].base_dir == tmp_path


def test_a_response_problem_points_at_the_field_with_path_line_and_column(tmp_path):
    _, _, problems = compiled(tmp_path)
    (problem,) = problems
    assert (problem.path, problem.line, problem.column) == (str(tmp_path / "t.yaml"), 12, 25)
    assert "template 't/none.yaml' not found" in problem.message


def test_the_templates_looked_at_are_listed_for_hot_reload(tmp_path):
    _, responders, _ = compiled(tmp_path)
    assert str(tmp_path / "templates" / "t" / "none.yaml") in responders.templates


def test_a_rule_of_another_load_finds_no_response(tmp_path):
    ruleset, responders, _ = compiled(tmp_path)
    again, _, _ = compiled(tmp_path)
    assert again.by_id["t.ok"] not in responders  # same id, other object: fails closed


def test_merging_keeps_both_sets(tmp_path):
    a_rules, a, _ = compiled(tmp_path)
    b_rules, b, _ = compiled(tmp_path)
    merged = a.merge(b)
    assert len(merged) == 2 and a_rules.by_id["t.ok"] in merged and b_rules.by_id["t.ok"] in merged
    assert len(Responders().merge(a)) == 1
