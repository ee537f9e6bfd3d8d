"""Injected failures: the models, the seeded draws, the rate limit, and the answers a real
client gets through guard (provider-shaped errors, resets, delays), all audited."""

from __future__ import annotations

import json
import random
import textwrap

import httpx
import pytest
import stripe
from pydantic import ValidationError

from guard.faults import Faults, Injector, draw
from tests.providers.stripe_api.conftest import sdk


@pytest.mark.parametrize("bad", [
    {"latency": {"ms": 10, "min_ms": 1, "max_ms": 2}},
    {"latency": {"min_ms": 5, "max_ms": 1}},
    {"latency": {"median_ms": 100, "p99_ms": 50}},
    {"latency": {"ms": 999_999}},
    {"errors": [{"share": 0.7, "kind": "reset"}, {"share": 0.7, "kind": "timeout"}]},
    {"errors": [{"share": 0.1, "kind": "explode"}]},
    {"rate_limit": {"requests": 0, "per_seconds": 1}},
    {"jitter": 1},
])
def test_bad_fault_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Faults.model_validate(bad)


def test_the_same_seed_draws_the_same_faults() -> None:
    faults = Faults.model_validate({"latency": {"median_ms": 80, "p99_ms": 900},
                                    "errors": [{"share": 0.2, "kind": "server_error"},
                                               {"share": 0.1, "kind": "reset"}]})

    def run(seed: int) -> list[object]:
        injector = Injector(seed)
        return [injector.fault(faults, "sbx", "p") for _ in range(200)]

    assert run(1) == run(1) and run(1) != run(2)
    kinds = [f.kind for f in run(1) if f is not None]
    assert 20 < kinds.count("server_error") < 60 and 5 < kinds.count("reset") < 40


def test_shares_are_shares() -> None:
    faults = Faults.model_validate({"errors": [{"share": 0.25, "kind": "rate_limit"}]})
    rng = random.Random(5)
    hits = sum(1 for _ in range(4000) if (f := draw(faults, rng)) and f.kind == "rate_limit")
    assert 850 < hits < 1150


def test_the_rate_limit_is_per_sandbox_and_refills() -> None:
    faults = Faults.model_validate({"rate_limit": {"requests": 2, "per_seconds": 10}})
    inj = Injector(1)
    got = [inj.fault(faults, "a", "p", now=100.0) for _ in range(3)]
    assert [f.kind if f else None for f in got] == [None, None, "rate_limit"]
    assert inj.fault(faults, "b", "p", now=100.0) is None  # another sandbox has its own
    assert inj.fault(faults, "a", "p", now=105.1) is None  # one token back after 5 s


PACK = """\
pack: flaky
hosts: [flaky.example]
rules:
  - id: flaky.down
    match: {path: /down}
    action: simulate
    faults: {errors: [{share: 1, kind: server_error}]}
    respond: {body: {ok: true}}
  - id: flaky.reset
    match: {path: /reset}
    action: simulate
    faults: {errors: [{share: 1, kind: reset}]}
    respond: {body: {ok: true}}
  - id: flaky.slow
    match: {path: /slow}
    action: simulate
    faults: {latency: {ms: 150}}
    respond: {body: {ok: true}}
  - id: flaky.limited
    match: {path: /limited}
    action: simulate
    faults: {rate_limit: {requests: 1, per_seconds: 3600}}
    respond: {body: {ok: true}}
"""


def test_injected_faults_reach_a_real_client_and_the_audit_log(guard_proxy, tmp_path) -> None:
    rules = tmp_path / "flaky.yaml"
    rules.write_text(textwrap.dedent(PACK))
    audit = tmp_path / "faults.jsonl"
    g = guard_proxy(rules, builtin=False, audit=audit, seed=3)
    with httpx.Client(proxy=g.url, verify=g.ca, timeout=10) as http:
        down = http.get("https://flaky.example/down")
        assert down.status_code == 500
        assert down.headers["content-type"] == "application/problem+json"
        with pytest.raises(httpx.TransportError):
            http.get("https://flaky.example/reset")
        assert http.get("https://flaky.example/slow").json() == {"ok": True}
        assert http.get("https://flaky.example/limited").status_code == 200
        limited = http.get("https://flaky.example/limited")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    g.stop()
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    faults = {e["rule"]: e.get("fault") for e in lines if "rule" in e}
    assert faults["flaky.down"] == {"delay_ms": 0.0, "kind": "server_error", "reason": "share"}
    assert faults["flaky.reset"]["kind"] == "reset"
    assert faults["flaky.slow"] == {"delay_ms": 150.0}
    assert [e.get("fault") for e in lines if e.get("rule") == "flaky.limited"] == [
        None, {"delay_ms": 0.0, "kind": "rate_limit", "reason": "rate limit"}]
    assert g.upstream_attempts == []


def test_stripe_faults_are_stripe_shaped(guard_proxy, tmp_path) -> None:
    rules = tmp_path / "stripe-faults.yaml"
    rules.write_text(textwrap.dedent("""\
        pack: stripe-faults
        hosts: [api.stripe.com]
        rules:
          - id: stripe-faults.customers
            priority: 10
            match: {method: GET, path: /v1/customers}
            action: simulate
            faults: {errors: [{share: 1, kind: rate_limit}]}
            respond: {handler: stripe.list_customers}
        """))
    g = guard_proxy(rules, seed=1)
    c = sdk(g)
    with pytest.raises(stripe.RateLimitError) as info:
        c.v1.customers.list()
    assert info.value.http_status == 429
    assert info.value.json_body["error"]["code"] == "rate_limit"
