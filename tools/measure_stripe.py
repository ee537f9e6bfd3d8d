"""Measure how much of Stripe guard answers (figures for docs/stripe.md).

    .venv/bin/python tools/measure_stripe.py [--failures]

Sends one smallest valid request per operation of Stripe's OpenAPI description
(guard/providers/stripe/spec/spec3.json.gz) and of the operations derived from the
installed stripe SDK (sdk3.json.gz beside it, tools/stripe_sdk_supplement.py) through
guard's engine and simulator, in process (no proxy), and counts the answers that are a 2xx
whose body validates against the operation's response schema (the derived schema for the
derived ones), each set on its own line. Prints the shares, the exceptions, and the
per-family table (Markdown).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stripe  # noqa: E402

from guard.openapi.measure import Report, measure  # noqa: E402
from guard.packs import load_packs  # noqa: E402
from guard.synth.simulator import Simulator  # noqa: E402
from guard.world import MemoryStore  # noqa: E402

_CHECKOUT = {"mode": "subscription", "success_url": "https://example.com/s",
             "line_items": [{"price": "{price}", "quantity": 1}]}

# What Stripe needs beyond the parameters its description marks required (the description
# leaves "one of these" rules to prose). "{customer}" is the id of a customer made earlier.
EXTRAS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/charges"): {"amount": 2000, "currency": "usd", "source": "tok_visa"},
    ("POST", "/v1/invoiceitems"): {"customer": "{customer}", "amount": 500, "currency": "usd"},
    ("POST", "/v1/invoices"): {"customer": "{customer}"},
    ("POST", "/v1/payment_methods"): {"type": "card", "card": {"token": "tok_visa"}},
    ("POST", "/v1/prices"): {"product": "{product}", "currency": "usd", "unit_amount": 1000,
                             "recurring": {"interval": "month"}},
    ("POST", "/v1/refunds"): {"charge": "{charge}", "amount": 100},
    ("POST", "/v1/subscriptions"): {"customer": "{customer}", "items": [{"price": "{price}"}],
                                    "payment_behavior": "default_incomplete"},
    ("POST", "/v1/tokens"): {"card": {"number": "4242424242424242", "exp_month": 12,
                                      "exp_year": 2030, "cvc": "123"}},
    ("POST", "/v1/checkout/sessions"): _CHECKOUT,
    ("POST", "/v1/billing/meter_events"): {"event_name": "api_calls", "payload": {
        "stripe_customer_id": "{customer}", "value": "1"}},
    ("POST", "/v1/charges/{charge}/refunds"): {"amount": 100},
    ("GET", "/v1/subscription_items"): {"subscription": "{subscription}"},
    ("POST", "/v1/invoices/{invoice}/pay"): {"paid_out_of_band": True},
}


# Actions that need a fresh object in a given state: made first with these parameters.
_CARD = {"amount": 2000, "currency": "usd", "source": "tok_visa"}
_OPEN_INVOICE = {"customer": "{customer}", "collection_method": "send_invoice",
                 "days_until_due": 30, "auto_advance": False}
_INTENT = {"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa",
           "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}}
_DRAFT = [("/v1/invoices", _OPEN_INVOICE)]
_FINALIZED = [("/v1/invoiceitems", {"customer": "{customer}", "amount": 700, "currency": "usd"}),
              ("/v1/invoices", {**_OPEN_INVOICE, "pending_invoice_items_behavior": "include"}),
              ("/v1/invoices/{id}/finalize", {})]
_SUBSCRIPTION = [("/v1/subscriptions", {"customer": "{customer}", "items": [{"price": "{price}"}],
                                        "payment_behavior": "default_incomplete"})]
SETUPS: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {
    ("POST", "/v1/charges/{charge}/capture"): [("/v1/charges", {**_CARD, "capture": False})],
    ("POST", "/v1/payment_intents/{intent}/capture"): [
        ("/v1/payment_intents", {**_INTENT, "confirm": True, "capture_method": "manual"})],
    ("POST", "/v1/payment_intents/{intent}/confirm"): [("/v1/payment_intents", _INTENT)],
    ("POST", "/v1/payment_intents/{intent}/cancel"): [("/v1/payment_intents", _INTENT)],
    ("POST", "/v1/invoices/{invoice}/finalize"): _DRAFT,
    ("POST", "/v1/invoices/{invoice}/send"): _FINALIZED,
    ("POST", "/v1/invoices/{invoice}/void"): _FINALIZED,
    ("POST", "/v1/invoices/{invoice}/mark_uncollectible"): _FINALIZED,
    ("POST", "/v1/invoices/{invoice}/pay"): _FINALIZED,
    ("DELETE", "/v1/invoices/{invoice}"): _DRAFT,
    ("POST", "/v1/invoices/{invoice}"): _DRAFT,
    ("POST", "/v1/checkout/sessions/{session}/expire"): [("/v1/checkout/sessions", _CHECKOUT)],
    ("DELETE", "/v1/products/{id}"): [("/v1/products", {"name": "Doomed"})],
    ("DELETE", "/v1/subscriptions/{subscription_exposed_id}"): _SUBSCRIPTION,
    # Deleting a shared object would leave later operations nothing to work on.
    ("DELETE", "/v1/customers/{customer}"): [("/v1/customers", {"email": "gone@example.com"})],
    ("DELETE", "/v1/invoiceitems/{invoiceitem}"): [
        ("/v1/invoiceitems", {"customer": "{customer}", "amount": 300, "currency": "usd"})],
}


# The meter event stream takes a meter event session's token as its key.
KEYS = {("POST", "/v2/billing/meter_event_stream"): ("/v2/billing/meter_event_session",
                                                     "authentication_token")}


def run_spec() -> Report:
    packs = load_packs([])
    pack = next(p for p in packs.ruleset.packs if p.pack.pack == "stripe")
    sim = Simulator(MemoryStore(seed=1))
    return measure(pack.openapi, "api.stripe.com", packs.engine.decide,
                   lambda d, r: sim.respond(d, r, packs.responders).response,
                   headers=[("Authorization", "Bearer sk_test_measure")],
                   extras=EXTRAS, setups=SETUPS, keys=KEYS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--failures", action="store_true", help="list every failing operation")
    args = ap.parse_args()
    report = run_spec()
    spec = [r for r in report.results if "x-guardFrom" not in r.operation.raw]
    derived = [r for r in report.results if "x-guardFrom" in r.operation.raw]
    total, ok = len(spec), sum(1 for r in spec if r.problem is None)
    hand = sum(1 for r in spec if not r.rule_id.startswith("stripe.op."))
    newer = [r for r in spec if r.problem is None and r.newer]
    print(f"spec operations answered 2xx with a valid body: {ok}/{total} "
          f"({100 * ok / total:.1f}%); {hand} by hand-written handlers")
    print(f"  of these, {len(newer)} valid but for fields Stripe's newer object shape "
          "(fixtures3.json) no longer has:")
    for field in sorted({f for r in newer for f in (r.newer or "").split(", ")}):
        print(f"    {field}")
    good = [r for r in derived if r.problem is None]
    v2 = sum(1 for r in good if r.operation.path.startswith("/v2/"))
    print(f"operations derived from stripe-python {stripe.VERSION} (sdk3.json.gz) answered 2xx "
          f"valid against their derived schema: {len(good)}/{len(derived)}"
          f"{f' ({100 * len(good) / len(derived):.1f}%)' if derived else ''}; "
          f"{len(good) - v2} under /v1, {v2} under /v2")
    bad = [r for r in report.results if r.problem is not None]
    if bad:
        print("\nexceptions:" if args.failures
              else f"\n{len(bad)} exceptions (--failures lists them)")
        if args.failures:
            for r in bad:
                print(f"- {r.operation.method} {r.operation.path} [{r.rule_id}]: {r.problem}")
    print("\n| family | operations | answered 2xx, valid |\n| --- | ---: | ---: |")
    for family, (good, count) in report.families().items():
        print(f"| {family} | {count} | {good} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
