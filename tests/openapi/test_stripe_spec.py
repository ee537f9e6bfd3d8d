"""Every operation of Stripe's OpenAPI description answers a 2xx whose body validates
against the operation's response schema (in process; tools/measure_stripe.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from guard.openapi.measure import Report

TOOL = Path(__file__).resolve().parents[2] / "tools" / "measure_stripe.py"
# Fields the 2024-04-10 description requires that Stripe's newer objects (fixtures3.json,
# the API version the SDK pins) no longer have: guard keeps the newer shape.
NEWER_SHAPE = {"invoice.paid", "invoice.paid_out_of_band", "invoice.total_tax_amounts",
               "line_item.proration", "line_item.type", "subscription.current_period_end",
               "subscription.current_period_start"}


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("measure_stripe", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report() -> Report:
    return _tool().run_spec()  # type: ignore[no-any-return]


def test_every_stripe_operation_answers_a_valid_2xx(report: Report) -> None:
    bad = [f"{r.operation.method} {r.operation.path}: {r.problem}" for r in report.results
           if r.problem is not None]
    spec = [r for r in report.results if "x-guardFrom" not in r.operation.raw]
    assert len(spec) == 533 and bad == []


def test_only_fields_stripe_has_since_dropped_differ_from_the_description(report: Report
                                                                         ) -> None:
    newer = {f for r in report.results if r.newer for f in r.newer.split(", ")}
    assert newer <= NEWER_SHAPE


def test_hand_written_handlers_answer_their_operations(report: Report) -> None:
    by_rule = {(r.operation.method, r.operation.path): r.rule_id for r in report.results}
    assert by_rule[("POST", "/v1/customers")] == "stripe.customers.create"
    assert by_rule[("GET", "/v1/customers/search")] == "stripe.customers.search"
    assert by_rule[("POST", "/v1/setup_intents")] == "stripe.op.post-setup-intents"
    assert sum(not r.rule_id.startswith("stripe.op.") for r in report.results) >= 80
