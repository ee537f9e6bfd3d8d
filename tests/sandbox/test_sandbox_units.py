"""The sandbox package without a proxy: tokens, registry, identity decisions, policies."""

from __future__ import annotations

import base64
import doctest
import importlib
import json

import pytest

from guard.errors import SandboxError
from guard.packs import load_packs
from guard.request import Request
from guard.sandbox import Policy, Registry, identify, tokens
from guard.sandbox.policies import PolicyEngines
from guard.synth.simulator import Simulator
from guard.world import MemoryStore

KEY = b"unit-test-key-0123456789"


@pytest.mark.parametrize("name", ["guard.sandbox.model", "guard.sandbox.tokens",
                                  "guard.sandbox.registry", "guard.sandbox.identity",
                                  "guard.sandbox.policies"])
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("mode,kw,rule", [
    ("header", {}, "guard.sandbox-missing"),
    ("header", {"header": ""}, "guard.sandbox-missing"),
    ("header", {"header": "agent-1"}, "guard.sandbox-unproven"),
    ("header", {"header": "gsk_"}, "guard.sandbox-unproven"),
    ("header", {"header": "gsk_agent-1.AAAA"}, "guard.sandbox-unproven"),
    ("proxy-user", {}, "guard.sandbox-missing"),
    ("proxy-user", {"proxy_auth": "Basic !!!"}, "guard.sandbox-unproven"),
    ("proxy-user", {"proxy_auth": "Bearer x"}, "guard.sandbox-unproven"),
    ("proxy-user", {"proxy_auth": basic("agent-1", "")}, "guard.sandbox-unproven"),
    ("proxy-user", {"proxy_auth": basic("agent-1", "wrong")}, "guard.sandbox-unproven"),
    ("proxy-user", {"proxy_auth": basic("agent-2", tokens.derive("agent-1", KEY))},
     "guard.sandbox-unproven"),
    ("proxy-user", {"proxy_auth": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
     "guard.sandbox-unproven"),
])
def test_unproven_identities_are_refused_under_their_rule(mode, kw, rule):
    found = identify(mode, Registry(key=KEY), client="10.0.0.1", **kw)
    assert found.refused and found.rule == rule and found.reason


def test_proven_identities(mode_cases=None):
    reg = Registry(key=KEY)
    t = tokens.derive("agent-1", KEY)
    assert identify("header", reg, client="x", header=t).sandbox == "agent-1"
    assert identify("proxy-user", reg, client="x", proxy_auth=basic("agent-1", t)
                    ).sandbox == "agent-1"
    assert identify("proxy-user", reg, client="x", proxy_auth=basic(t, "")).sandbox == "agent-1"
    assert identify("client", reg, client="10.0.0.9", header=t).sandbox == "10.0.0.9"


def test_tokens_are_refused_when_malformed_and_issued_ones_are_random():
    assert len({tokens.issue() for _ in range(100)}) == 100
    for bad in ("", "gsk_", "gsk_.", "gsk_a.", "gsk_../x." + "A" * 43, "x" * 300,
                "gsk_agent-1." + "A" * 43):
        assert tokens.derived_id(bad, KEY) is None
    with pytest.raises(SandboxError):
        tokens.derive("../x", KEY)


def test_token_checks_use_constant_time_comparison(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(tokens.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    t = tokens.derive("agent-1", KEY)
    assert tokens.derived_id(t, KEY) == "agent-1" and calls


def test_the_registry_persists_token_hashes_never_tokens(tmp_path):
    path = tmp_path / "sandboxes.json"
    reg = Registry(path=path)
    sb, token = reg.create("a", labels={"x": "y"}, client_address="10.0.0.5")
    assert token not in path.read_text()
    again = Registry(path=path)
    assert again.by_token(token) == "a" and again.by_address("10.0.0.5") == "a"
    again.delete("a")
    assert Registry(path=path).by_token(token) is None
    path.write_text("{not json")
    with pytest.raises(SandboxError, match="cannot read the sandbox registry"):
        Registry(path=path)


def test_a_policy_decides_with_its_own_packs(tmp_path, builtin_packs):
    extra = tmp_path / "extra.yaml"
    extra.write_text(json.dumps({"pack": "extra", "hosts": ["api.extra.test"], "rules": [
        {"id": "extra.hello", "match": {"method": "GET", "path": "/hello"},
         "action": "simulate", "respond": {"status": 200, "body": {"hi": True}}}]}))
    base = builtin_packs
    engines = PolicyEngines(load_packs([str(extra)], builtin=False))
    req = Request.build("GET", "https://api.extra.test/hello")
    assert base.engine.decide(req).rule_id == "guard.default-deny"
    with_extra = engines.packs(base, Policy(packs=["extra"]))
    decision = with_extra.engine.decide(req)
    assert decision.rule_id == "extra.hello"
    answer = Simulator(MemoryStore(seed=1)).respond(decision, req, with_extra.responders)
    assert json.loads(answer.response.body) == {"hi": True}  # the policy pack's response
    assert engines.packs(base, Policy(packs=["extra"])) is with_extra  # shared
    stripe = Request.build("GET", "https://api.stripe.com/v1/customers",
                           headers={"Authorization": "Bearer sk_test_x"})
    no_stripe = engines.packs(base, Policy(disable_packs=["stripe"]))
    assert no_stripe.engine.decide(stripe).rule_id == "guard.default-deny"
    reloaded = load_packs([])
    assert engines.packs(reloaded, Policy(packs=["extra"])) is not with_extra
    with pytest.raises(SandboxError, match="unknown packs nope"):
        engines.check(base, Policy(packs=["nope"]))


def test_a_policy_adds_webhook_hosts_to_its_own_simulator():
    base = Simulator(MemoryStore(seed=1), options={"webhook_allow": ("a.test",)})
    engines = PolicyEngines()
    assert engines.simulator(base, Policy()) is base
    sim = engines.simulator(base, Policy(webhook_allow=["hooks.b.test"]))
    assert sim.options["webhook_allow"] == ("a.test", "hooks.b.test")
    assert sim.worlds is base.worlds


@pytest.mark.parametrize("bad", [{"packs": ["../x"]}, {"webhook_allow": ["a b"]},
                                 {"name": "x" * 200}, {"unknown": 1}, {"packs": "stripe"}])
def test_bad_policies_are_refused_with_the_field_named(bad):
    with pytest.raises(SandboxError, match="policy"):
        Policy.parse(bad)
