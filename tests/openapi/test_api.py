"""The OpenAPI engine on a small description: routing roles, state, errors, paging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guard.openapi.api import OpenApi, Settings
from guard.openapi.spec import load_spec
from guard.request import Request
from guard.world import MemoryStore, World

PETS = Path(__file__).with_name("petstore.yaml")


def make_api(**settings: Any) -> OpenApi:
    return OpenApi(load_spec(PETS), Settings(pack="pets", paging="link", **settings))


class Client:
    def __init__(self, api: OpenApi, world: World) -> None:
        self.api, self.world = api, world
        self.ops = {(o.method, o.path): o for o in api.operations}

    def __call__(self, method: str, path: str, template: str | None = None,
                 body: Any = None, **captures: str) -> tuple[int, Any, dict[str, str]]:
        op = self.ops[(method, template or path)]
        headers = {"Content-Type": "application/json"} if body is not None else {}
        req = Request.build(method, "https://pets.example" + path, headers=headers,
                            body=json.dumps(body) if body is not None else b"")
        r = self.api.handle(op, req, captures, self.world)
        data = json.loads(r.body) if r.body else None
        return r.status, data, {k.lower(): v for k, v in r.headers}


@pytest.fixture
def client() -> Client:
    return Client(make_api(), MemoryStore(seed=3).world("s1"))


def test_operation_roles_come_from_the_shape_of_the_paths() -> None:
    roles = {(o.method, o.path): o.role for o in make_api().operations}
    assert roles == {
        ("GET", "/pets"): "list", ("POST", "/pets"): "create",
        ("GET", "/pets/search"): "search", ("GET", "/pets/{petId}"): "retrieve",
        ("PATCH", "/pets/{petId}"): "update", ("DELETE", "/pets/{petId}"): "delete",
        ("POST", "/pets/{petId}/adopt"): "action", ("GET", "/shelters/{shelter-id}"): "retrieve",
        ("GET", "/status"): "none"}
    assert make_api().summary() == {"operations": 9, "stateful": 8, "example_only": 1}


def test_a_created_object_is_retrieved_listed_updated_and_deleted(client: Client) -> None:
    status, pet, _ = client("POST", "/pets", body={"name": "Rex", "kind": "dog",
                                                  "tags": ["good"]})
    assert status == 201 and pet["name"] == "Rex" and pet["kind"] == "dog"
    assert pet["tags"] == ["good"] and pet["status"] in ("available", "adopted")
    pid = pet["id"]
    assert client("GET", f"/pets/{pid}", "/pets/{petId}", petId=pid)[1] == pet
    assert [p["id"] for p in client("GET", "/pets")[1]] == [pid]
    status, updated, _ = client("PATCH", f"/pets/{pid}", "/pets/{petId}", body={"name": "Max"},
                                petId=pid)
    assert status == 200 and updated["name"] == "Max" and updated["id"] == pid
    status, adopted, _ = client("POST", f"/pets/{pid}/adopt", "/pets/{petId}/adopt", petId=pid)
    assert adopted["status"] == "adopted"
    assert client("DELETE", f"/pets/{pid}", "/pets/{petId}", petId=pid)[0] == 204
    status, problem, headers = client("GET", f"/pets/{pid}", "/pets/{petId}", petId=pid)
    assert status == 404 and headers["content-type"] == "application/problem+json"
    assert problem == {"type": "about:blank", "title": "Not Found", "status": 404,
                       "detail": f"No such pet: '{pid}'", "instance": f"/pets/{pid}"}


@pytest.mark.parametrize(("body", "param", "detail"), [
    ({"name": "Rex"}, "kind", "Missing required param: kind."),
    ({"name": "Rex", "kind": "bird"}, "kind", "Invalid kind: must be one of cat, or dog"),
    ({"name": "Rex", "kind": "cat", "colour": "red"}, "colour",
     "Received unknown parameter: colour"),
    ({"name": 7, "kind": "cat"}, "name", "Invalid name: expected a string"),
    ({"name": "Rex", "kind": "cat", "owner_email": "nope"}, "owner_email",
     "Invalid email address: nope"),
    ({"name": "Rex", "kind": "cat", "tags": ["a", 3]}, "tags[1]",
     "Invalid tags[1]: expected a string"),
    ({"name": "Rex", "kind": "cat", "born": "2026-13-01"}, "born",
     "Invalid born: 2026-13-01 is not a valid date"),
    ({"name": "x" * 41, "kind": "cat"}, "name",
     "Invalid string: " + "x" * 41 + "; must be at most 40 characters"),
])
def test_a_bad_request_gets_an_rfc_9457_problem_naming_the_parameter(
        client: Client, body: dict[str, Any], param: str, detail: str) -> None:
    status, problem, headers = client("POST", "/pets", body=body)
    assert status == 400 and headers["content-type"] == "application/problem+json"
    assert problem["detail"] == detail and problem["errors"][0]["parameter"] == param
    assert client("GET", "/pets")[1] == []  # nothing was kept


def test_unknown_query_parameters_and_bad_json_are_refused(client: Client) -> None:
    op = client.ops[("GET", "/pets")]
    req = Request.build("GET", "https://pets.example/pets?colour=red")
    r = client.api.handle(op, req, {}, client.world)
    assert r.status == 400 and json.loads(r.body)["errors"][0]["parameter"] == "colour"
    req = Request.build("POST", "https://pets.example/pets", body=b"{not json",
                        headers={"Content-Type": "application/json"})
    r = client.api.handle(client.ops[("POST", "/pets")], req, {}, client.world)
    assert r.status == 400 and "not valid JSON" in json.loads(r.body)["detail"]


def test_lists_page_with_link_headers(client: Client) -> None:
    for i in range(5):
        client("POST", "/pets", body={"name": f"p{i}", "kind": "cat"})
    op = client.ops[("GET", "/pets")]
    req = Request.build("GET", "https://pets.example/pets?per_page=2&page=2")
    r = client.api.handle(op, req, {}, client.world)
    assert len(json.loads(r.body)) == 2
    link = dict(r.headers)["Link"]
    assert 'page=3&per_page=2>; rel="next"' in link and 'rel="prev"' in link


def test_search_matches_text_fields(client: Client) -> None:
    client("POST", "/pets", body={"name": "Biscuit", "kind": "dog"})
    client("POST", "/pets", body={"name": "Pepper", "kind": "cat"})
    op = client.ops[("GET", "/pets/search")]
    r = client.api.handle(op, Request.build("GET", "https://pets.example/pets/search?q=bisc"),
                          {}, client.world)
    assert [p["name"] for p in json.loads(r.body)["results"]] == ["Biscuit"]


def test_objects_nobody_here_creates_exist_on_first_reference_and_stay(client: Client) -> None:
    status, shelter, _ = client("GET", "/shelters/shl_1", "/shelters/{shelter-id}",
                                **{"shelter-id": "shl_1"})
    assert status == 200 and shelter["id"] == "shl_1" and shelter["name"] and shelter["city"]
    again = client("GET", "/shelters/shl_1", "/shelters/{shelter-id}", **{"shelter-id": "shl_1"})
    assert again[1] == shelter


def test_a_strict_world_answers_not_found_for_unknown_ids_everywhere() -> None:
    strict = Client(make_api(strict=True), MemoryStore(seed=3).world("s1"))
    assert strict("GET", "/shelters/shl_1", "/shelters/{shelter-id}",
                  **{"shelter-id": "shl_1"})[0] == 404


def test_examples_answer_operations_without_state(client: Client) -> None:
    assert client("GET", "/status") == (200, {"ok": True}, {"content-type": "application/json"})


def test_the_same_seed_gives_the_same_answers() -> None:
    def run() -> list[Any]:
        c = Client(make_api(), MemoryStore(seed=11).world("s"))
        pet = c("POST", "/pets", body={"name": "Rex", "kind": "dog"})[1]
        shelter = c("GET", "/shelters/x", "/shelters/{shelter-id}", **{"shelter-id": "x"})[1]
        return [pet, shelter]

    assert run() == run()
    other = Client(make_api(), MemoryStore(seed=12).world("s"))
    assert other("POST", "/pets", body={"name": "Rex", "kind": "dog"})[1] != run()[0]


def test_generated_values_are_data_never_templates(client: Client) -> None:
    status, pet, _ = client("POST", "/pets", body={"name": "{{ 7 * 7 }}", "kind": "cat"})
    assert pet["name"] == "{{ 7 * 7 }}"
