"""Loading descriptions: JSON, YAML, gzip, $ref, and errors located in the file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from guard.errors import RuleError
from guard.openapi.spec import load_spec, pointer

OK = {"200": {"description": "ok"}}


def doc(**extra: object) -> dict[str, object]:
    return {"openapi": "3.0.3", "info": {"title": "T", "version": "1"},
            "paths": {"/a": {"get": {"responses": OK}}}, **extra}


@pytest.mark.parametrize("name", ["api.json", "api.yaml", "api.json.gz", "api.yaml.gz"])
def test_json_yaml_and_gzipped_descriptions_load(tmp_path: Path, name: str) -> None:
    text = json.dumps(doc())  # JSON is YAML too
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    spec = load_spec(path)
    assert [(m, p) for m, p, _, _ in spec.operations()] == [("GET", "/a")]


BAD = [
    ('{"openapi": "3.0.3",\n "paths": [}', 2, "invalid JSON"),
    ('{"swagger": "2.0", "paths": {}}', 1, "Swagger 2.0 is not supported"),
    ('{"openapi": "3.0.3",\n "info": {},\n "paths": {"/a": {"get": {"responses": {"200":\n'
     ' {"$ref": "#/components/responses/Nope"}}}}}}', 4,
     "at #/paths/~1a/get/responses/200/$ref: $ref '#/components/responses/Nope' names nothing"),
    ('openapi: 3.1.0\ninfo: {}\npaths:\n  a: {}\n', 4, "at #/paths/a: a path must start"),
    ('openapi: 3.1.0\ninfo: {}\npaths:\n  /a:\n    get:\n      responses: [1]\n', 6,
     "'responses' must be a mapping"),
    ('openapi: 3.1.0\npaths: {/a: {get: {responses: {}}}\n', 3, "invalid YAML"),
    ('\xff\xfe', 1, "not UTF-8"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_a_bad_description_is_reported_at_file_line_naming_the_pointer(
        tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / ("api.json" if text.startswith("{") else "api.yaml")
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with pytest.raises(RuleError) as info:
        load_spec(path)
    problem = info.value.problems[0]
    assert problem.path == str(path) and problem.line == line
    assert message in problem.message, problem.message
    assert str(problem).startswith(f"{path}:{line}:")


def test_refs_into_files_beside_the_description_resolve(tmp_path: Path) -> None:
    (tmp_path / "schemas.yaml").write_text("Pet: {type: object}\n")
    d = doc()
    d["paths"]["/a"]["get"]["responses"] = {  # type: ignore[index]
        "200": {"description": "ok", "content": {"application/json": {
            "schema": {"$ref": "schemas.yaml#/Pet"}}}}}
    (tmp_path / "api.json").write_text(json.dumps(d))
    spec = load_spec(tmp_path / "api.json")
    assert spec.resolve({"$ref": "schemas.yaml#/Pet"}) == {"type": "object"}


@pytest.mark.parametrize("ref", ["../secret.yaml#/x", "/etc/passwd#/x",
                                 "https://example.com/x.yaml#/x"])
def test_refs_never_leave_the_description_folder(tmp_path: Path, ref: str) -> None:
    d = doc(components={"schemas": {"X": {"$ref": ref}}})
    (tmp_path / "api.json").write_text(json.dumps(d))
    with pytest.raises(RuleError) as info:
        load_spec(tmp_path / "api.json")
    assert "#/components/schemas/X/$ref" in str(info.value)


def test_a_cycle_of_references_is_an_error_not_a_hang(tmp_path: Path) -> None:
    d = doc(components={"schemas": {"A": {"$ref": "#/components/schemas/B"},
                                    "B": {"$ref": "#/components/schemas/A"}}})
    (tmp_path / "api.json").write_text(json.dumps(d))
    spec = load_spec(tmp_path / "api.json")
    with pytest.raises(ValueError, match="cycle"):
        spec.resolve({"$ref": "#/components/schemas/A"})


def test_pointers_escape_slashes_and_tildes() -> None:
    assert pointer(["paths", "/v1/a~b", "get"]) == "#/paths/~1v1~1a~0b/get"


def test_a_supplement_adds_operations_and_schemas_and_names_the_descriptions(
        tmp_path: Path) -> None:
    main = doc(components={"schemas": {"Pet": {"type": "object", "title": "main"}}})
    (tmp_path / "api.json").write_text(json.dumps(main))
    ok = {"200": {"description": "ok", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Pet"}}}}}
    extra = {"openapi": "3.0.0", "info": {}, "paths": {
        "/a": {"get": {"responses": {}, "operationId": "Theirs"},
               "post": {"responses": ok, "operationId": "PostA"}},
        "/b": {"get": {"responses": ok, "operationId": "GetB"}}},
        "components": {"schemas": {"Pet": {"title": "theirs"}, "Toy": {"type": "string"}}}}
    (tmp_path / "more.json").write_text(json.dumps(extra))
    spec = load_spec(tmp_path / "api.json", [tmp_path / "more.json"])
    ops = {(m, p): op for m, p, op, _ in spec.operations()}
    assert ops[("GET", "/a")].get("operationId") != "Theirs"  # the description's wins
    assert "x-guardFrom" not in ops[("GET", "/a")]
    assert ops[("POST", "/a")]["x-guardFrom"] == "more.json"
    assert ops[("GET", "/b")]["x-guardFrom"] == "more.json"
    assert spec.resolve({"$ref": "#/components/schemas/Pet"})["title"] == "main"
    assert spec.resolve({"$ref": "#/components/schemas/Toy"}) == {"type": "string"}
    assert load_spec(tmp_path / "api.json").document == main  # unchanged on its own


def test_a_supplements_bad_ref_is_located_in_the_supplement(tmp_path: Path) -> None:
    (tmp_path / "api.json").write_text(json.dumps(doc()))
    extra = {"openapi": "3.0.0", "info": {}, "paths": {"/b": {"get": {"responses": {
        "200": {"description": "ok", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Nope"}}}}}}}}}
    (tmp_path / "more.json").write_text(json.dumps(extra, indent=1))
    with pytest.raises(RuleError) as info:
        load_spec(tmp_path / "api.json", [tmp_path / "more.json"])
    problem = str(info.value)
    assert f"{tmp_path / 'more.json'}:" in problem and "names nothing" in problem
    assert "#/paths/~1b/get/responses/200" in problem
