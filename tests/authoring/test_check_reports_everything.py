"""guard check reports every problem of a rule file at once, each at its line, and refuses
mistakes that used to pass: a misspelt method, nothing to check. The real command runs in a
subprocess, as a rule author runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]

BAD = """\
pack: t
hosts: [a.example]
rules:
  - id: t.one
    match: {method: GETT, path: /x}
    action: block
    respond: {status: 200, template: nope.j2}
  - id: t.two
    match: {path: /y}
    action: simulate
    respond:
      status: 200
      headers: {X-A: "{{ broken( }}"}
      body: {a: "{{ also broken( }}", b: "{% if %}"}
  - id: t.three
    match: {path: /z, method: [get, PSOT]}
    action: simulate
    respond: {status: 200, body: {ok: true}}
"""


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guard", "check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_every_problem_of_every_rule_is_reported_at_its_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    proc = check("--no-builtin", str(f))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    where = [line.split(": ", 1)[0].removeprefix(f"{f}:") for line in lines[:-1]]
    assert where == ["4:5", "5:21", "7:38", "13:22", "14:17", "14:42", "16:31"], proc.stderr
    text = proc.stderr
    assert "rules.0: action block takes no respond section" in text
    assert "unknown HTTP method 'GETT' (did you mean GET?)" in text
    assert "template 'nope.j2' not found" in text  # on the block rule, too
    assert "unknown HTTP method 'PSOT' (did you mean POST?)" in text
    assert lines[-1] == "guard: 7 problem(s) in rule files"


def test_methods_are_any_case_and_the_schema_refuses_a_misspelt_one(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(BAD.split("  - id: t.one")[0] + "  - id: t.ok\n    match: {method: "
                    "[get, POST, propfind, '*']}\n    action: block\n")
    assert check("--no-builtin", str(good)).returncode == 0
    schema = json.loads((ROOT / "docs" / "rules.schema.json").read_text())
    v = jsonschema.Draft202012Validator(schema)
    assert not list(v.iter_errors(yaml.safe_load(good.read_text())))
    bad = yaml.safe_load(BAD)
    assert any("GETT" in e.message for e in v.iter_errors(bad))


def test_check_with_nothing_to_check_says_so():
    proc = check("--no-builtin")
    assert proc.returncode == 2
    assert "nothing to check" in proc.stderr and proc.stdout == ""


def test_check_of_a_directory_without_rule_files_fails(tmp_path):
    (tmp_path / "notes.txt").write_text("no rules here")
    proc = check(str(tmp_path))
    assert proc.returncode == 1
    assert f"no rule files in {tmp_path}" in proc.stderr
