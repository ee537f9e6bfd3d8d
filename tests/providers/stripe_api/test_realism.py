"""Every Stripe object type guard produces, compared with Stripe's example object of the
same type (see realism.py for the rules). Set GUARD_STRIPE_COVERAGE=FILE to write the
coverage table (docs/stripe.md and README.md quote it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.providers.stripe_api.realism import Comparer, fixtures_path, load_fixtures, table

FIXTURES = load_fixtures()
MIN_COVERAGE = 0.95

# Stripe's example objects are vendored (guard/providers/stripe/spec/), so this runs in
# every clone; a missing file is a failure, not a skip.
assert FIXTURES is not None, f"Stripe's example objects not found at {fixtures_path()}"


def _every_object_type(c: stripe.StripeClient) -> list[dict[str, Any]]:
    """Drive guard through flows that make every object type it knows; return the raw
    JSON bodies of the answers."""
    bodies: list[dict[str, Any]] = []

    def keep(obj: Any) -> Any:
        bodies.append(json.loads(obj.last_response.body))
        return obj

    customer = keep(c.v1.customers.create({
        "email": "jenny@example.com", "name": "Jenny Rosen", "phone": "+15555550100",
        "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "shipping": {"name": "Jenny Rosen", "address": {"line1": "1 Main St"}},
        "metadata": {"crm": "42"}}))
    pm = keep(c.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id}))
    keep(c.v1.customers.update(customer.id, {
        "invoice_settings": {"default_payment_method": pm.id}}))
    pi = keep(c.v1.payment_intents.create({
        "amount": 2000, "currency": "usd", "customer": customer.id, "payment_method": pm.id,
        "confirm": True, "receipt_email": "jenny@example.com", "description": "Order 1"}))
    keep(c.v1.charges.retrieve(pi.latest_charge))
    keep(c.v1.refunds.create({"payment_intent": pi.id, "amount": 500}))
    keep(c.v1.payment_intents.create({"amount": 900, "currency": "usd",
                                      "capture_method": "manual", "confirm": True,
                                      "payment_method": "pm_card_mastercard",
                                      "automatic_payment_methods": {"enabled": True}}))
    with pytest.raises(stripe.CardError) as declined:
        c.v1.payment_intents.create({"amount": 3000, "currency": "usd", "confirm": True,
                                     "payment_method": "pm_card_chargeDeclined"})
    bodies.append(declined.value.json_body["error"]["payment_intent"])
    keep(c.v1.charges.retrieve(declined.value.json_body["error"]["charge"]))
    keep(c.v1.charges.create({"amount": 700, "currency": "eur", "source": "tok_visa"}))
    keep(c.v1.tokens.create({"card": {"number": "4242424242424242", "exp_month": 12,
                                      "exp_year": 2030, "cvc": "123"}}))
    keep(c.v1.balance.retrieve())
    keep(c.v1.balance_transactions.list())

    product = keep(c.v1.products.create({"name": "Pro", "description": "For teams",
                                         "images": ["https://img.example/pro.png"]}))
    price = keep(c.v1.prices.create({"product": product.id, "currency": "usd",
                                     "unit_amount": 2900, "recurring": {"interval": "month"},
                                     "nickname": "Pro monthly"}))
    keep(c.v1.prices.create({"product": product.id, "currency": "usd", "unit_amount": 500}))
    sub = keep(c.v1.subscriptions.create({"customer": customer.id,
                                          "items": [{"price": price.id}]}))
    keep(c.v1.invoices.retrieve(sub.latest_invoice))
    keep(c.v1.subscription_items.list({"subscription": sub.id}))
    keep(c.v1.invoice_items.create({"customer": customer.id, "amount": 300,
                                    "description": "Setup"}))
    draft = keep(c.v1.invoices.create({"customer": customer.id,
                                       "pending_invoice_items_behavior": "include"}))
    keep(c.v1.invoices.line_items.list(draft.id))
    extra = c.v1.invoice_items.create({"customer": customer.id, "amount": 100})
    keep(c.v1.invoice_items.delete(extra.id))
    keep(c.v1.invoices.delete(keep(c.v1.invoices.create({"customer": customer.id})).id))
    keep(c.v1.subscriptions.cancel(sub.id))
    spare = c.v1.products.create({"name": "Spare"})
    keep(c.v1.products.delete(spare.id))

    session = keep(c.v1.checkout.sessions.create({
        "mode": "payment", "success_url": "https://shop.example/ok",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 1500,
                                       "product_data": {"name": "Poster"}}, "quantity": 1}]}))
    keep(c.v1.checkout.sessions.line_items.list(session.id))
    hook = keep(c.v1.webhook_endpoints.create({"url": "http://localhost:9/hook",
                                               "enabled_events": ["charge.succeeded"]}))
    keep(c.v1.webhook_endpoints.delete(hook.id))
    keep(c.v1.events.list({"limit": 100}))
    keep(c.v1.customers.delete(customer.id))
    return bodies


def test_every_produced_object_type_matches_stripes_example_object(guard_proxy):
    from tests.providers.stripe_api.conftest import sdk

    assert FIXTURES is not None
    g = guard_proxy(seed=11)
    comparer = Comparer(FIXTURES)
    for body in _every_object_type(sdk(g)):
        comparer.add(body) if body.get("object") != "list" else [
            comparer.add(item) for item in body["data"]]
    reports = comparer.reports
    out = os.environ.get("GUARD_STRIPE_COVERAGE")
    if out:
        Path(out).write_text(table(reports) + "\n")
    print("\n" + table(reports))
    expected = {"balance", "balance_transaction", "card", "charge", "checkout.session",
                "customer", "deleted_customer", "deleted_invoice", "deleted_invoiceitem",
                "deleted_product", "deleted_webhook_endpoint", "event", "invoice",
                "invoiceitem", "item", "line_item", "payment_intent", "payment_method", "plan",
                "price", "product", "refund", "subscription", "subscription_item", "token",
                "webhook_endpoint"}
    assert set(reports) == expected
    problems = [p for r in reports.values() for p in r.problems]
    print("\n".join(problems))
    print({k: sorted(r.missing) for k, r in reports.items() if r.missing})
    assert problems == []
    low = {k: (round(r.worst, 3), sorted(r.missing)) for k, r in reports.items()
           if r.worst < MIN_COVERAGE}
    assert low == {}
    assert g.upstream_attempts == []
