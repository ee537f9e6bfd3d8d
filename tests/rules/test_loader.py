"""Broken rule files: every problem reported as path:line:column, all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guard.errors import RuleError
from guard.packs import load_packs
from guard.rules.loader import load_rules


def problems_for(tmp_path: Path, text: str, name: str = "r.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    with pytest.raises(RuleError) as info:
        load_packs([path], builtin=False)  # the rules and their responses
    return [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pack: t\nrules:\n  - id: t.a\n    action: [block\n",
         "r.yaml:5:1: invalid YAML"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: explode\n",
         "r.yaml:5:13: rules.0.action: unknown action 'explode': use simulate, block or allow"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: block\n"
         "    match: {headers: {x: {regex: '(['}}}\n",
         "r.yaml:6:34: rules.0.match.headers.x.regex: invalid regular expression '(['"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: block\n"
         "  - id: t.a\n    action: allow\n",
         "r.yaml:6:9: duplicate rule id 't.a' (first defined at"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: Bad_ID\n    action: block\n",
         "r.yaml:4:9: rules.0.id: rule id 'Bad_ID' must be dotted lower-case words"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: block\n    colour: red\n",
         "r.yaml:6:5: rules.0.colour: unknown field 'colour'"),
        ("pack: t\nrules:\n  - id: t.a\n    action: block\n",
         "r.yaml:3:5: rule 't.a' has no hosts"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: simulate\n",
         "r.yaml:4:5: rules.0: action simulate needs a respond section"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: simulate\n"
         "    respond: {template: nope/missing.yaml}\n",
         "r.yaml:6:25: template 'nope/missing.yaml' not found"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: simulate\n"
         "    respond: {body: {a: '{{ oops( }}'}}\n",
         "r.yaml:6:25: template syntax error"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: block\n"
         "    match: {path: '/a/{x}}/b'}\n",
         "r.yaml:6:19: bad placeholder in path template"),
        ("pack: t\nhosts: [a.test]\nhosts: [b.test]\nrules: []\n",
         "r.yaml:3:1: duplicate key 'hosts'"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: simulate\n"
         "    respond: {handler: nosuch.thing}\n",
         "r.yaml:6:24: unknown handler 'nosuch.thing'"),
        ("- just\n- a list\n", "r.yaml:1:1: a rule file is a mapping"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: block\n"
         "    match: {path: '/a/{x}/b/{x}'}\n",
         "r.yaml:6:19: capture {x} appears twice in path template '/a/{x}/b/{x}'"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - id: t.a\n    action: !shell rm\n",
         "r.yaml:5:13: cannot read this value: could not determine a constructor for the tag "
         "'!shell'"),
        ("pack: t\nhosts: [a.test]\nrules: &r\n  - id: t.a\n    action: block\n    x: *r\n",
         "r.yaml:6:8: invalid YAML: found undefined alias 'r'"),
        ("pack: t\nhosts: [a.test]\nrules:\n  - <<: {id: t.a}\n    action: block\n",
         "r.yaml:4:5: merge keys (<<) are not supported"),
        ("pack: t\n---\npack: u\n", "r.yaml:2:1: invalid YAML: expected a single document"),
        ("a: " + "[" * 300 + "]" * 300 + "\n", "r.yaml:1:"),
    ],
)
def test_a_broken_rule_file_names_file_line_and_column(tmp_path, text, expected):
    problems = problems_for(tmp_path, text)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    problems = problems_for(tmp_path, """
        pack: t
        hosts: [a.test]
        rules:
          - id: t.a
            action: explode
          - id: t.b
            action: block
            match: {method: GET, query: {q: {regex: "(["}}}
          - id: t.b
            action: block
    """)
    assert [p.split(":")[1] for p in problems] == ["5", "8", "9"], problems


def test_problems_in_several_files_are_all_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("pack: a\nrules:\n  - id: a.x\n    action: nope\n")
    (tmp_path / "b.yaml").write_text("pack: b\nrules: [\n")
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path], builtin=False)
    assert {Path(p.path).name for p in info.value.problems} == {"a.yaml", "b.yaml"}


def test_a_duplicate_id_across_files_points_at_both(tmp_path):
    (tmp_path / "a.yaml").write_text("pack: a\nhosts: [x.test]\nrules:\n"
                                     "  - id: same.id\n    action: block\n")
    (tmp_path / "b.yaml").write_text("pack: b\nhosts: [x.test]\nrules:\n"
                                     "  - id: same.id\n    action: allow\n")
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path], builtin=False)
    (problem,) = info.value.problems
    assert problem.path.endswith("b.yaml") and "a.yaml:4:5" in problem.message


def test_the_builtin_packs_load_cleanly():
    ruleset = load_rules([])
    assert ruleset.by_id["stripe.customers.create"].action == "simulate"


def test_aliases_cannot_expand_a_small_file_into_billions_of_values(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    problems = problems_for(tmp_path, "\n".join(lines) + "\n")
    assert any("aliases expand to more than" in p for p in problems), problems


def test_the_loader_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    import gc

    path = tmp_path / "r.yaml"
    path.write_text("pack: t\nhosts: [a.test]\nrules: [{id: t.a, action: block}]\n")
    assert gc.isenabled()
    load_rules([path], builtin=False)
    assert gc.isenabled()
    path.write_text("pack: t\nrules: [{id: t.a, action: explode}]\n")
    with pytest.raises(RuleError):
        load_rules([path], builtin=False)
    assert gc.isenabled()
    gc.disable()
    try:
        load_rules([], builtin=False)
        assert not gc.isenabled()
    finally:
        gc.enable()
