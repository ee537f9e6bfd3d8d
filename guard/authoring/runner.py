"""Run rule test cases: each group against one fresh world, with a fixed seed.

A case's request goes through the same pure pieces the proxy uses: the
:class:`Engine` decides, the :class:`Simulator` answers simulate decisions, and
block and error answers come from :mod:`guard.blocked`; so a case sees the status,
headers and body an agent would get. Nothing is sent anywhere, and after-response
effects (such as webhook deliveries) are not run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from guard.authoring.cases import CaseGroup, LocatedCase, Suite
from guard.authoring.expect import Seen, mismatches
from guard.blocked import block_response, error_response
from guard.decision import NearMiss
from guard.engine import Engine
from guard.errors import GuardError
from guard.request import Request
from guard.rules.matchers import norm
from guard.rules.model import CaseRequest
from guard.synth.simulator import Simulator
from guard.world import MemoryStore

TEST_SANDBOX = "guard-test"
TEST_SEED = 0


@dataclass(frozen=True)
class Outcome:
    """What happened to one case's request, with what ``guard explain`` would say."""

    request: Request
    seen: Seen
    reason: str
    source: str | None  # where the deciding rule is written
    near_misses: tuple[NearMiss, ...]
    error: str | None = None


@dataclass(frozen=True)
class CaseResult:
    group: CaseGroup
    located: LocatedCase
    outcome: Outcome
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def run_suite(suite: Suite, *, seed: int = TEST_SEED) -> list[CaseResult]:
    """Run every group of ``suite`` (one engine for all, one fresh world per group)."""
    engine = Engine(suite.ruleset)
    results: list[CaseResult] = []
    for group in suite.groups:
        simulator = Simulator(MemoryStore(seed=seed))
        for located in group.cases:
            outcome = run_case(engine, simulator, located.case.request)
            results.append(CaseResult(group, located, outcome,
                                      mismatches(located.case.expect, outcome.seen)))
    return results


def run_case(engine: Engine, simulator: Simulator, spec: CaseRequest) -> Outcome:
    """Decide and answer one request as the proxy would (failing closed on errors)."""
    req = build_request(spec)
    explanation = engine.explain(req)
    decision = explanation.decision
    source = str(decision.rule.source) if decision.rule is not None else None
    error = None
    if decision.action == "simulate":
        try:
            response = simulator.respond(decision, req).response
            seen = Seen("simulate", decision.rule_id, response.status, response.headers,
                        response.body)
        except Exception as e:  # the proxy answers 500 naming the rule; so does the case
            rule_id = getattr(e, "rule_id", None) or decision.rule_id
            error = str(e) if isinstance(e, GuardError) else f"{type(e).__name__}: {e}"
            response = error_response(500, rule_id, error)
            seen = Seen("error", rule_id, 500, response.headers, response.body)
    elif decision.action == "block":
        response = block_response(decision)
        seen = Seen("block", decision.rule_id, response.status, response.headers, response.body)
    else:
        seen = Seen(decision.action, decision.rule_id, None, [], b"")
    return Outcome(req, seen, decision.reason, source, explanation.near_misses, error)


def build_request(spec: CaseRequest) -> Request:
    """The :class:`Request` a case describes, in sandbox ``guard-test``.

    >>> from guard.rules.model import CaseRequest
    >>> r = build_request(CaseRequest.model_validate(
    ...     {"method": "post", "url": "https://api.stripe.com/v1/customers",
    ...      "form": {"email": "a@b.c", "metadata": {"plan": "pro"}}}))
    >>> r.method, r.form["metadata"]["plan"], r.header("content-type")
    ('POST', 'pro', 'application/x-www-form-urlencoded')
    """
    headers = [(k, norm(v)) for k, v in spec.headers.items()]
    given = {k.lower() for k, _ in headers}
    body = ""
    content_type = None
    if spec.form is not None:
        body = urlencode(list(flatten_form(spec.form)))
        content_type = "application/x-www-form-urlencoded"
    elif "json_" in spec.model_fields_set:
        body = json.dumps(spec.json_, ensure_ascii=False)
        content_type = "application/json"
    elif spec.body is not None:
        body = spec.body
    if content_type and "content-type" not in given:
        headers.append(("Content-Type", content_type))
    return Request.build(spec.method, spec.url, headers=headers, body=body,
                         client="127.0.0.1", sandbox=TEST_SANDBOX)


def flatten_form(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested form data as Stripe-style pairs: ``{"a": {"b": [1]}}`` -> ``a[b][0]=1``."""
    out: list[tuple[str, str]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, (dict, list)):
            out.extend(flatten_form(value, name))  # type: ignore[arg-type]
        else:
            out.append((name, "" if value is None else norm(value)))
    return out
