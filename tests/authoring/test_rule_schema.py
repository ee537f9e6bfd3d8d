"""guard schema: the exported JSON Schema is current and accepts every real rule file."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from authoring_helpers import guard

from guard.rules.loader import builtin_rule_paths
from guard.rules.schema import cases_schema, dumps, rules_schema

ROOT = Path(__file__).resolve().parents[2]
HEADER = "# yaml-language-server: $schema="
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.yaml"))


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "docs" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(("name", "build"), [("rules.schema.json", rules_schema),
                                             ("cases.schema.json", cases_schema)])
def test_the_committed_schema_is_what_guard_schema_prints(name, build):
    committed = (ROOT / "docs" / name).read_text()
    assert committed == dumps(build()), f"docs/{name} is stale: run 'guard schema --write docs'"


def test_guard_schema_prints_the_rules_schema(capsys):
    code, out, _ = guard(capsys, "schema")
    assert code == 0 and json.loads(out) == rules_schema()
    code, out, _ = guard(capsys, "schema", "--cases")
    assert code == 0 and json.loads(out)["title"] == "guard rule test cases"


@pytest.mark.parametrize("path", builtin_rule_paths() + [p for p in EXAMPLES
                                                         if not p.name.endswith(".cases.yaml")],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_schema_accepts_every_builtin_pack_and_example(path):
    errors = list(validator("rules.schema.json").iter_errors(yaml.safe_load(path.read_text())))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


@pytest.mark.parametrize("path", builtin_rule_paths(), ids=lambda p: p.parent.name)
def test_every_builtin_pack_points_editors_at_the_schema(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith(HEADER)
    assert (path.parent / first.removeprefix(HEADER)).resolve() == ROOT / "docs" / "rules.schema.json"


def test_the_schema_rejects_what_the_loader_rejects():
    v = validator("rules.schema.json")
    pack = yaml.safe_load((ROOT / "guard" / "providers" / "stripe" / "pack.yaml").read_text())
    pack["rules"].append({"id": "Not.Valid", "action": "explode", "colour": "red",
                          "match": {"headers": {"x": {"regexp": "a"}}}})
    pack["tests"].append({"name": "no request", "expect": {"status": 99}})
    messages = sorted(e.message for e in v.iter_errors(pack))
    assert any("'colour' was unexpected" in m for m in messages)
    assert any("'explode' is not one of" in m for m in messages)
    assert any("'Not.Valid' does not match" in m for m in messages)
    assert any("'request' is a required property" in m for m in messages)
    assert any("99 is not valid under any of the given schemas" in m for m in messages)


def test_case_files_validate_against_the_cases_schema():
    v = validator("cases.schema.json")
    good = {"cases": [{"name": "x", "request": {"method": "POST", "url": "https://a.test/",
                                                "json": {"a": [1]}},
                       "expect": {"status": 201, "body": {"$.a[0]": {"regex": "^1$"}}}}]}
    assert not list(v.iter_errors(good))
    bad = {"cases": [{"name": "x", "request": {"url": "ftp://a.test/"}, "expect": {}}]}
    assert list(v.iter_errors(bad))


def test_schema_descriptions_cover_every_field():
    """An editor shows these on hover: every property of every model has one."""
    schema = rules_schema()
    missing = [f"{name}.{prop}" for name, model in schema["$defs"].items()
               for prop, spec in model.get("properties", {}).items()
               if "description" not in spec]
    assert not missing, missing
