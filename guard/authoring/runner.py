"""Run rule test cases: each group against one fresh world, with a fixed seed.

A case's request goes through the pipeline the proxy uses (:func:`guard.pipeline.handle`):
the :class:`Engine` decides, the :class:`Simulator` answers simulate decisions, block and
error answers are the proxy's; so a case sees the status, headers and body an agent would
get. Nothing is sent anywhere, and after-response effects (such as webhook deliveries) are
not run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from guard import pipeline
from guard.authoring.cases import CaseGroup, LocatedCase, Suite
from guard.authoring.expect import Seen, mismatches
from guard.decision import NearMiss
from guard.packs import Packs
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
    """Run every group of ``suite`` (one rule set for all, one fresh world per group)."""
    results: list[CaseResult] = []
    for group in suite.groups:
        simulator = Simulator(MemoryStore(seed=seed))
        for located in group.cases:
            outcome = run_case(suite.loaded, simulator, located.case.request)
            results.append(CaseResult(group, located, outcome,
                                      mismatches(located.case.expect, outcome.seen)))
    return results


def run_case(packs: Packs, simulator: Simulator, spec: CaseRequest, *,
             sandbox: str = TEST_SANDBOX) -> Outcome:
    """Decide and answer one request as the proxy would: through :func:`guard.pipeline.handle`
    (failing closed on errors), with what ``guard explain`` would say."""
    req = build_request(spec, sandbox=sandbox)
    out = pipeline.handle(req, pipeline.Context(packs, simulator), explain=True)
    decision, response = out.decision, out.response
    source = str(decision.rule.source) if decision.rule is not None else None
    seen = Seen(decision.action, decision.rule_id, response.status if response else None,
                response.headers if response else [], response.body if response else b"")
    reason = decision.rule.reason if out.error and decision.rule is not None else decision.reason
    return Outcome(req, seen, reason, source, out.near_misses, out.error)


def build_request(spec: CaseRequest, *, sandbox: str = TEST_SANDBOX) -> Request:
    """The :class:`Request` a case describes, in sandbox ``guard-test`` unless told.

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
                         client="127.0.0.1", sandbox=sandbox)


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
