"""guard/pipeline.py is the one place a request is decided and failures become rule ids;
`guard test` and the real proxy both go through it, so they agree on every built-in case."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace

import pytest
import requests

from guard import pipeline
from guard.authoring import collect
from guard.authoring.runner import build_request, run_case
from guard.engine import Engine
from guard.errors import AuditError, TemplateError
from guard.packs import Packs, load_packs
from guard.pipeline import Context, Names, Service, handle
from guard.request import Request, Response
from guard.synth.simulator import Simulator
from guard.world import MemoryStore
from tests.sandboxes import token

CUSTOMER = Request.build("POST", "https://api.stripe.com/v1/customers",
                         headers={"Authorization": "Bearer sk_test_1",
                                  "Content-Type": "application/x-www-form-urlencoded"},
                         body="email=a@b.c")


@pytest.fixture(scope="module")
def packs() -> Packs:
    return load_packs([])


def context(packs: Packs, **kw) -> Context:
    return Context(packs, Simulator(MemoryStore(seed=1)), **kw)


def test_a_simulated_request_returns_its_response_and_world_changes(packs):
    out = handle(CUSTOMER, context(packs))
    assert (out.action, out.rule_id, out.response.status) == ("simulate",
                                                              "stripe.customers.create", 200)
    assert "stripe.customers" in {c.collection for c in out.changes} and out.error is None


def test_a_failing_simulator_blocks_with_500_naming_the_rule(packs):
    class Broken(Simulator):
        def respond(self, decision, req, responders):
            raise TemplateError(decision.rule_id, "boom")

    out = handle(CUSTOMER, Context(packs, Broken(MemoryStore(seed=1))))
    assert (out.action, out.rule_id, out.response.status) == ("error",
                                                              "stripe.customers.create", 500)
    body = json.loads(out.response.body)["error"]
    assert body["rule"] == "stripe.customers.create" and "boom" in body["message"]
    assert out.error == "rule stripe.customers.create: boom"


def test_an_unexpected_exception_fails_closed_too(packs):
    class Exploding(Engine):
        def decide(self, req):
            raise ZeroDivisionError("x")

    out = handle(CUSTOMER, context(replace(packs, engine=Exploding(packs.ruleset))))
    assert (out.action, out.rule_id, out.response.status) == ("error", "guard.internal-error",
                                                              500)
    assert out.error == "ZeroDivisionError: x"


def test_an_unwritable_audit_log_blocks_everything_with_503(packs):
    def down() -> None:
        raise AuditError("disk full")

    out = handle(CUSTOMER, context(packs, audit_ready=down))
    assert (out.action, out.rule_id, out.response.status) == ("block",
                                                              "guard.audit-unavailable", 503)
    assert pipeline.failed(AuditError("x"), out.decision).response.status == 503


def test_a_request_without_one_name_is_refused_before_the_rules(packs):
    out = handle(CUSTOMER, context(packs), names=Names("api.stripe.com", "evil.test"))
    assert (out.action, out.rule_id, out.response.status) == ("block", "guard.sni-mismatch", 403)
    out = handle(CUSTOMER, context(packs), names=Names(None, None, transparent=True))
    assert out.rule_id == "guard.no-host"


def test_guards_own_services_answer_before_any_rule(packs):
    seen: list[Request] = []

    def answer(req: Request) -> Response:
        seen.append(req)
        return Response.json(200, {"ok": True})

    own = Service("guard.test-service", "answered by the test", answer)
    out = handle(CUSTOMER, context(packs), service=own)  # a host the rules simulate
    assert (out.action, out.rule_id, out.response.status) == ("simulate",
                                                              "guard.test-service", 200)
    assert seen == [CUSTOMER]
    out = handle(Request.build("GET", "https://x.test/"), context(packs), service=own)
    assert out.rule_id == "guard.test-service"


def test_a_failing_service_fails_closed_naming_it(packs):
    def answer(req: Request) -> Response:
        raise OSError("no")

    out = handle(CUSTOMER, context(packs), service=Service("guard.svc", "r", answer))
    assert (out.action, out.rule_id, out.response.status) == ("error", "guard.svc", 500)


def test_explain_collects_the_near_misses(packs):
    out = handle(CUSTOMER, context(packs), explain=True)
    assert any(m.rule_id == "stripe.live-key" for m in out.near_misses)
    assert handle(CUSTOMER, context(packs)).near_misses == ()


def test_the_docstring_examples_hold():
    result = doctest.testmod(pipeline)
    assert result.failed == 0 and result.attempted > 0


def test_guard_test_and_the_proxy_give_the_same_outcome_for_every_builtin_case(guard_proxy):
    """Every built-in case, once through `guard test`'s runner and once through a running
    guard over HTTPS. Each case group gets its own sandbox (the same name on both sides)
    in a fresh world with the same seed, so even ids and virtual times match: the bodies
    must be byte-identical."""
    suite = collect([])
    g = guard_proxy(seed=0, sandbox_from="header")
    compared = 0
    with requests.Session() as s:
        for i, group in enumerate(suite.groups):
            sandbox = f"case-group-{i}"
            simulator = Simulator(MemoryStore(seed=0))  # what run_suite gives each group
            for located in group.cases:
                spec = located.case.request
                expected = run_case(suite.loaded, simulator, spec, sandbox=sandbox).seen
                req = build_request(spec, sandbox=sandbox)
                r = s.request(req.method, spec.url, data=req.body, proxies=g.proxies,
                              verify=g.ca,
                              headers=dict([*req.headers, ("X-Guard-Sandbox", token(sandbox))]))
                where = f"{located.where} ({spec.method} {spec.url})"
                got = (r.headers.get("X-Guard-Action"), r.headers.get("X-Guard-Rule"),
                       r.status_code)
                assert got == (expected.action, expected.rule, expected.status), where
                assert r.content == expected.body, where
                sent = {k.lower(): v for k, v in r.headers.items()}
                for name, value in expected.headers:
                    assert sent.get(name.lower()) == value, f"{where}: header {name}"
                compared += 1
    assert compared == suite.count > 100
    assert g.upstream_attempts == []


def test_an_unproven_sandbox_is_refused_before_anything_else(packs):
    from guard.sandbox import Identity

    stranger = Identity(None, "-", "guard.sandbox-missing", "no proof")
    out = handle(CUSTOMER, context(packs), identity=stranger)
    assert (out.action, out.rule_id, out.response.status) == ("block", "guard.sandbox-missing",
                                                              403)
    out = handle(CUSTOMER, context(packs, challenge=True), identity=stranger,
                 service=Service("guard.svc", "r", lambda req: Response(200, [], b"")))
    assert out.response.status == 407
    assert ("Proxy-Authenticate", 'Basic realm="guard sandbox"') in out.response.headers
