"""The synthesizer: data-tree templates, determinism, request data never rendered."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable

import pytest

from guard.errors import TemplateError
from guard.packs import Packs, load_packs
from guard.request import Request
from guard.synth.simulator import Simulator
from guard.world import MemoryStore

FORM = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer sk_test_1"}


@pytest.fixture
def run(builtin_packs: Packs) -> Callable[[int, list[Request]], list[bytes]]:
    def run(seed: int, requests: list[Request]) -> list[bytes]:
        sim, engine = Simulator(MemoryStore(seed=seed)), builtin_packs.engine
        return [sim.respond(engine.decide(r), r, builtin_packs.responders).response.body
                for r in requests]
    return run


def stripe_calls() -> list[Request]:
    return [
        Request.build("POST", "https://api.stripe.com/v1/customers", headers=FORM,
                      body="email=a@b.c&metadata[k]=v", client="10.0.0.1", sandbox="s1"),
        Request.build("POST", "https://api.stripe.com/v1/payment_intents", headers=FORM,
                      body="amount=100&currency=USD", client="10.0.0.1", sandbox="s1"),
        Request.build("POST", "https://api.stripe.com/v1/charges", headers=FORM,
                      body="amount=100&currency=usd&source=tok_visa", sandbox="s2"),
    ]


def test_the_same_seed_and_requests_give_byte_identical_responses(run):
    assert run(42, stripe_calls()) == run(42, stripe_calls())
    assert run(42, stripe_calls()) != run(43, stripe_calls())


def test_request_content_is_data_never_template_source(run):
    evil = "{{ 7 * 7 }}{% for x in range(3) %}x{% endfor %}"
    req = Request.build("POST", "https://api.stripe.com/v1/customers", headers=FORM,
                        body=f"name={evil}&description=%22quoted%22%5C")
    (body,) = run(1, [req])
    data = json.loads(body)
    assert data["name"] == evil and data["description"] == '"quoted"\\'


def test_types_are_kept_for_single_expression_leaves(run):
    req = Request.build("POST", "https://api.stripe.com/v1/payment_intents", headers=FORM,
                        body="amount=2500&currency=EUR&metadata[order]=7")
    (body,) = run(1, [req])
    data = json.loads(body)
    assert data["amount"] == 2500 and data["currency"] == "eur"
    assert data["metadata"] == {"order": "7"} and data["livemode"] is False


def test_an_undefined_name_fails_naming_the_rule(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(textwrap.dedent("""
        pack: t
        hosts: [t.test]
        rules:
          - id: t.typo
            action: simulate
            respond: {body: {x: "{{ reqest.path }}"}}
    """))
    packs, sim = load_packs([rules], builtin=False), Simulator(MemoryStore())
    req = Request.build("GET", "https://t.test/")
    with pytest.raises(TemplateError) as info:
        sim.respond(packs.engine.decide(req), req, packs.responders)
    assert info.value.rule_id == "t.typo" and "reqest" in str(info.value)


def test_a_failed_render_leaves_the_world_unchanged(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(textwrap.dedent("""
        pack: t
        hosts: [t.test]
        rules:
          - id: t.store
            action: simulate
            respond:
              body: {id: "{{ request.query.id }}", n: "{{ 1 // (request.query.n | int) }}"}
              store: {collection: things}
    """))
    worlds = MemoryStore()
    packs, sim = load_packs([rules], builtin=False), Simulator(worlds)
    ok = Request.build("GET", "https://t.test/?id=a&n=1")
    bad = Request.build("GET", "https://t.test/?id=b&n=0")
    sim.respond(packs.engine.decide(ok), ok, packs.responders)
    with pytest.raises(TemplateError):
        sim.respond(packs.engine.decide(bad), bad, packs.responders)
    assert [t["id"] for t in worlds.world("default").list("things")] == ["a"]


def test_ids_follow_provider_formats(run):
    (customer, intent, charge) = (json.loads(b) for b in run(5, stripe_calls()))
    assert customer["id"].startswith("cus_") and intent["id"].startswith("pi_")
    assert len(intent["id"]) == len("pi_") + 24 and charge["id"].startswith("ch_")
