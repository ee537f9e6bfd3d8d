"""The decision engine, as tables of (rules, request, expected decision)."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import pytest

from guard.decision import DEFAULT_RULE_ID
from guard.engine import Engine
from guard.request import Request
from guard.rules.loader import load_rules

RULES = """
pack: t
hosts: [api.example.com]
rules:
  - id: t.items.create
    match: {method: POST, path: /v1/items}
    action: simulate
    respond: {body: {ok: true}}
  - id: t.items.get
    match: {method: [GET, HEAD], path: "/v1/items/{id}"}
    action: simulate
    respond: {body: {id: "{{ captures.id }}"}}
  - id: t.items.special
    match: {method: GET, path: /v1/items/special}
    action: block
    reason: special is off limits
  - id: t.files
    match: {path: "/files/{rest:path}"}
    action: allow
  - id: t.numbers
    match: {path: "/n/{n:int}"}
    action: allow
  - id: t.tree
    match: {path: "/tree/**"}
    action: allow
  - id: t.query
    match: {path: /search, query: {q: {prefix: "secret"}}}
    action: block
  - id: t.header
    match: {path: /h, headers: {X-Mode: [a, b]}}
    action: allow
  - id: t.form
    match: {path: /form, form: {"metadata.kind": gold, "items[0][price]": {regex: "^price_"}}}
    action: block
  - id: t.json
    match: {path: /json, json: {"user.admin": true, "tags.0": {contains: "x"}}}
    action: block
  - id: t.body
    match: {path: /body, body: {contains: "password"}}
    action: block
  - id: t.absent
    match: {path: /absent, headers: {authorization: {present: false}}}
    action: block
  - id: t.not
    match: {path: /not, query: {mode: {not: {in: [read, list]}}}}
    action: block
  - id: t.urgent
    priority: 10
    match: {path: /v1/items, headers: {x-urgent: "1"}}
    action: block
  - id: t.wild
    hosts: ["*.example.com"]
    match: {path: /v1/items}
    action: allow
  - id: t.deep-wild
    hosts: ["*.eu.example.com"]
    match: {path: /v1/items}
    action: block
  - id: t.anywhere
    hosts: ["*"]
    match: {path: /anywhere}
    action: block
"""

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = tmp_path_factory.mktemp("rules") / "t.yaml"
    path.write_text(textwrap.dedent(RULES))
    return Engine(load_rules([path], builtin=False))


CASES = [
    # method and path
    ("POST", "https://api.example.com/v1/items", {}, "", "t.items.create", "simulate"),
    ("GET", "https://api.example.com/v1/items", {}, "", "t.wild", "allow"),
    ("GET", "https://api.example.com/v1/items/it_1", {}, "", "t.items.get", "simulate"),
    ("HEAD", "https://api.example.com/v1/items/it_1", {}, "", "t.items.get", "simulate"),
    ("DELETE", "https://api.example.com/v1/items/it_1", {}, "", DEFAULT_RULE_ID, "block"),
    # an exact path beats a template of the same priority
    ("GET", "https://api.example.com/v1/items/special", {}, "", "t.items.special", "block"),
    ("GET", "https://api.example.com/files/a/b/c.txt", {}, "", "t.files", "allow"),
    ("GET", "https://api.example.com/n/42", {}, "", "t.numbers", "allow"),
    ("GET", "https://api.example.com/n/x", {}, "", DEFAULT_RULE_ID, "block"),
    ("GET", "https://api.example.com/tree", {}, "", "t.tree", "allow"),
    ("GET", "https://api.example.com/tree/x/y", {}, "", "t.tree", "allow"),
    # query, headers, form, json, body
    ("GET", "https://api.example.com/search?q=secret-plans", {}, "", "t.query", "block"),
    ("GET", "https://api.example.com/search?q=cats", {}, "", DEFAULT_RULE_ID, "block"),
    ("GET", "https://api.example.com/h", {"X-Mode": "b"}, "", "t.header", "allow"),
    ("GET", "https://api.example.com/h", {"X-Mode": "c"}, "", DEFAULT_RULE_ID, "block"),
    ("POST", "https://api.example.com/form", FORM,
     "metadata[kind]=gold&items[0][price]=price_1", "t.form", "block"),
    ("POST", "https://api.example.com/form", FORM,
     "metadata[kind]=gold&items[0][price]=sku_1", DEFAULT_RULE_ID, "block"),
    ("POST", "https://api.example.com/json", JSON,
     '{"user": {"admin": true}, "tags": ["xyz"]}', "t.json", "block"),
    ("POST", "https://api.example.com/json", JSON,
     '{"user": {"admin": false}, "tags": ["xyz"]}', DEFAULT_RULE_ID, "block"),
    ("POST", "https://api.example.com/body", {}, "user=a&password=b", "t.body", "block"),
    ("GET", "https://api.example.com/absent", {}, "", "t.absent", "block"),
    ("GET", "https://api.example.com/absent", {"Authorization": "x"}, "", DEFAULT_RULE_ID,
     "block"),
    ("GET", "https://api.example.com/not?mode=write", {}, "", "t.not", "block"),
    ("GET", "https://api.example.com/not?mode=read", {}, "", DEFAULT_RULE_ID, "block"),
    # priority beats everything else
    ("POST", "https://api.example.com/v1/items", {"X-Urgent": "1"}, "", "t.urgent", "block"),
    # hosts: wildcard, longer wildcard first, apex not matched by *., and *
    ("POST", "https://eu.example.com/v1/items", {}, "", "t.wild", "allow"),
    ("POST", "https://x.eu.example.com/v1/items", {}, "", "t.deep-wild", "block"),
    ("POST", "https://example.com/v1/items", {}, "", DEFAULT_RULE_ID, "block"),
    ("GET", "https://anything.test/anywhere", {}, "", "t.anywhere", "block"),
    ("GET", "https://unknown.test/", {}, "", DEFAULT_RULE_ID, "block"),
]


@pytest.mark.parametrize(("method", "url", "headers", "body", "rule", "action"), CASES)
def test_decides(engine, method, url, headers, body, rule, action):
    decision = engine.decide(Request.build(method, url, headers=headers, body=body))
    assert (decision.rule_id, decision.action) == (rule, action)


def test_captures_come_back_with_the_decision(engine):
    d = engine.decide(Request.build("GET", "https://api.example.com/files/a/b.txt"))
    assert dict(d.captures) == {"rest": "a/b.txt"}


def test_explain_lists_near_misses_with_reasons(engine):
    ex = engine.explain(Request.build("PUT", "https://api.example.com/v1/items"))
    assert ex.decision.rule_id == "t.wild"  # the exact-host rules above it did not match
    why = {m.rule_id: m.why for m in ex.near_misses}
    assert why["t.items.create"] == "method is PUT, wanted POST"
    assert "headers x-urgent is absent" in why["t.urgent"]


def test_rules_for_other_hosts_are_not_even_considered(engine):
    assert {r.id for r in engine.candidates("api.example.com")} >= {"t.items.create"}
    assert {r.id for r in engine.candidates("other.test")} == {"t.anywhere"}


def test_the_same_rules_decide_the_same_way_every_time(tmp_path: Path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(RULES))
    a, b = Engine(load_rules([path], builtin=False)), Engine(load_rules([path], builtin=False))
    for method, url, headers, body, *_ in CASES:
        req = Request.build(method, url, headers=headers, body=body)
        assert a.decide(req).rule_id == b.decide(req).rule_id


@pytest.mark.parametrize("authorization", [
    "Bearer sk_live_1",
    "Basic " + base64.b64encode(b"sk_live_1:").decode(),   # curl -u sk_live_1:
    "Basic " + base64.b64encode(b"rk_live_2:x").decode(),
])
def test_builtin_stripe_pack_blocks_live_keys_anywhere_however_sent(authorization,
                                                                   builtin_engine):
    engine = builtin_engine
    for url in ("https://api.stripe.com/v1/customers", "https://files.stripe.com/x"):
        d = engine.decide(Request.build("GET", url, headers={"Authorization": authorization}))
        assert (d.rule_id, d.action) == ("stripe.live-key", "block")


def test_a_credential_matcher_never_echoes_the_secret_in_explanations(builtin_engine):
    engine = builtin_engine
    ex = engine.explain(Request.build("GET", "https://api.stripe.com/v1/customers",
                                      headers={"Authorization": "Bearer sk_test_SECRET"}))
    assert all("SECRET" not in m.why for m in ex.near_misses)
    assert any(m.rule_id == "stripe.live-key" and "credential sent does not match" in m.why
               for m in ex.near_misses)


def test_an_inner_star_label_matches_exactly_one_label_of_any_region(tmp_path):
    path = tmp_path / "aws.yaml"
    path.write_text(
        "pack: aws\n"
        "rules:\n"
        "  - {id: aws.ses, hosts: ['email.*.amazonaws.com'], action: block}\n"
        "  - {id: aws.any, hosts: ['*.amazonaws.com'], action: allow}\n"
    )
    engine = Engine(load_rules([path], builtin=False))
    decide = lambda host: engine.decide(Request.build("POST", f"https://{host}/")).rule_id  # noqa: E731
    assert decide("email.eu-west-1.amazonaws.com") == "aws.ses"
    assert decide("email.us-east-1.amazonaws.com") == "aws.ses"
    assert decide("email.amazonaws.com") == "aws.any"  # the inner * needs a label
    assert decide("email.a.b.amazonaws.com") == "aws.any"  # and exactly one
    assert decide("s3.eu-west-1.amazonaws.com") == "aws.any"
