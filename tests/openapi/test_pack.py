"""The ``openapi`` pack source: one rule per operation, hand-written rules override."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from guard.engine import Engine
from guard.errors import RuleError
from guard.packs import load_packs
from guard.request import Request
from guard.rules.loader import load_rules
from guard.synth.simulator import Simulator
from guard.world import MemoryStore

PETS = Path(__file__).with_name("petstore.yaml")

PACK = """\
pack: pets
hosts: [pets.example]
openapi: {spec: petstore.yaml, paging: link}
rules:
  - id: pets.status.down
    match: {method: GET, path: /status}
    action: simulate
    respond: {status: 503, body: {ok: false}}
"""


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    shutil.copy(PETS, tmp_path / "petstore.yaml")
    (tmp_path / "pets.yaml").write_text(PACK)
    return tmp_path


def test_every_operation_becomes_its_own_rule(pack_dir: Path) -> None:
    rs = load_rules([pack_dir / "pets.yaml"], builtin=False)
    ids = sorted(r.id for r in rs.rules)
    assert ids == ["pets.openapi.adopt-pet", "pets.openapi.create-pet",
                   "pets.openapi.delete-pet", "pets.openapi.get-pet", "pets.openapi.get-shelter",
                   "pets.openapi.list-pets", "pets.openapi.search-pets",
                   "pets.openapi.update-pet", "pets.status.down"]
    assert all(r.methods is not None and len(r.paths) == 1 for r in rs.rules)
    pack = rs.packs[0]
    assert pack.openapi.summary()["operations"] == 9
    assert pack.operations["pets.status.down"].operation_id == "getStatus"


@pytest.mark.parametrize(("method", "path", "rule"), [
    ("GET", "/pets/search", "pets.openapi.search-pets"),  # literal before {petId}
    ("GET", "/pets/p1", "pets.openapi.get-pet"),
    ("POST", "/pets/p1/adopt", "pets.openapi.adopt-pet"),
    ("GET", "/shelters/s-1", "pets.openapi.get-shelter"),
    ("GET", "/status", "pets.status.down"),  # the pack's own rule wins
    ("PUT", "/pets/p1", "guard.default-deny"),
    ("GET", "/nope", "guard.default-deny"),
])
def test_routing_is_per_operation(pack_dir: Path, method: str, path: str, rule: str) -> None:
    engine = Engine(load_rules([pack_dir / "pets.yaml"], builtin=False))
    assert engine.decide(Request.build(method, f"https://pets.example{path}")).rule_id == rule


def test_a_parameter_that_is_not_an_identifier_is_captured(pack_dir: Path) -> None:
    packs, sim = load_packs([pack_dir / "pets.yaml"], builtin=False), Simulator(MemoryStore(seed=1))
    req = Request.build("GET", "https://pets.example/shelters/shl_42")
    out = sim.respond(packs.engine.decide(req), req, packs.responders).response
    assert out.status == 200 and json.loads(out.body)["id"] == "shl_42"


def test_a_pack_rule_with_a_respond_body_answers_as_written(pack_dir: Path) -> None:
    # Only handler rules get the operation's validation in front (tests/providers/stripe_api shows
    # it); a rule that answers with a body answers exactly what its author wrote.
    packs, sim = load_packs([pack_dir / "pets.yaml"], builtin=False), Simulator(MemoryStore(seed=1))
    for url in ("https://pets.example/status", "https://pets.example/status?x=1"):
        req = Request.build("GET", url)
        assert sim.respond(packs.engine.decide(req), req, packs.responders).response.status == 503


@pytest.mark.parametrize(("spec_text", "where"), [
    ("openapi: 2.0\n", "petstore.yaml:1:1"),
    ("openapi: 3.0.0\ninfo: {}\npaths:\n  /a: {get: {responses: {200: {$ref: '#/x'}}}}\n",
     "petstore.yaml:4:"),
])
def test_a_bad_description_stops_loading_with_its_location(pack_dir: Path, spec_text: str,
                                                           where: str) -> None:
    (pack_dir / "petstore.yaml").write_text(spec_text)
    with pytest.raises(RuleError) as info:
        load_rules([pack_dir / "pets.yaml"], builtin=False)
    assert where in str(info.value)


@pytest.mark.parametrize(("source", "message"), [
    ("{spec: ../petstore.yaml}", "spec must be a path inside the rule file's folder"),
    ("{spec: missing.yaml}", "cannot read OpenAPI description"),
    ("{spec: petstore.yaml, paging: pages}", "openapi.paging"),
    ("{spec: petstore.yaml, errors: nope}", "unknown error shape 'nope'"),
    ("{spec: petstore.yaml, provider: nope}", "provider 'nope' has no openapi module"),
])
def test_a_bad_openapi_section_is_a_rule_error(pack_dir: Path, source: str,
                                               message: str) -> None:
    (pack_dir / "pets.yaml").write_text(PACK.replace(
        "openapi: {spec: petstore.yaml, paging: link}", f"openapi: {source}"))
    with pytest.raises(RuleError) as info:
        load_rules([pack_dir / "pets.yaml"], builtin=False)
    assert message in str(info.value) and "pets.yaml:3:" in str(info.value) or \
        message in str(info.value) and "missing.yaml:1:1" in str(info.value)
