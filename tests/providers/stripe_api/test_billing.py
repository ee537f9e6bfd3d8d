"""Billing and checkout through guard with the official stripe SDK: products, prices,
subscriptions and their invoices, invoice items, checkout sessions, balance."""

from __future__ import annotations

import pytest
import stripe


def _customer_with_card(c: stripe.StripeClient, pm: str = "pm_card_visa") -> stripe.Customer:
    customer = c.v1.customers.create({"email": "sub@example.com", "name": "Sub Scriber"})
    card = c.v1.payment_methods.attach(pm, {"customer": customer.id})
    return c.v1.customers.update(customer.id, {
        "invoice_settings": {"default_payment_method": card.id}})


def test_a_subscription_is_created_with_items_and_its_first_invoice_is_paid(stripe_guard):
    c, g = stripe_guard
    product = c.v1.products.create({"name": "Pro plan", "metadata": {"tier": "pro"}})
    price = c.v1.prices.create({"product": product.id, "currency": "usd", "unit_amount": 2900,
                                "recurring": {"interval": "month"}, "lookup_key": "pro"})
    assert price.type == "recurring" and str(price.unit_amount_decimal) == "2900"
    customer = _customer_with_card(c)

    sub = c.v1.subscriptions.create({"customer": customer.id,
                                     "items": [{"price": price.id, "quantity": 2}],
                                     "metadata": {"seats": "2"},
                                     "expand": ["latest_invoice"]})
    assert sub.status == "active" and sub.metadata["seats"] == "2"
    item = sub["items"].data[0]
    assert item.price.id == price.id and item.quantity == 2 and item.plan.amount == 2900
    assert item.current_period_end > item.current_period_start
    invoice = sub.latest_invoice
    assert invoice.status == "paid" and invoice.amount_paid == 5800
    assert invoice.billing_reason == "subscription_create" and invoice.number
    assert invoice.lines.data[0].amount == 5800
    assert invoice.parent.subscription_details.subscription == sub.id

    invoices = c.v1.invoices.list({"subscription": sub.id})
    assert [i.id for i in invoices.data] == [invoice.id]
    charges = c.v1.charges.list({"customer": customer.id})
    assert charges.data[0].amount == 5800 and charges.data[0].paid
    lines = c.v1.invoices.line_items.list(invoice.id)
    assert lines.data[0].pricing.price_details.price == price.id
    assert c.v1.customers.retrieve(customer.id).currency == "usd"
    assert [p.id for p in c.v1.prices.list({"lookup_keys": ["pro"]}).data] == [price.id]
    assert g.upstream_attempts == []


def test_a_subscription_without_a_card_or_with_a_declining_one_is_incomplete(stripe_guard):
    c, _ = stripe_guard
    price = c.v1.prices.create({"currency": "usd", "unit_amount": 1000,
                                "recurring": {"interval": "year"},
                                "product_data": {"name": "Yearly"}})
    bare = c.v1.customers.create({"email": "nocard@example.com"})
    sub = c.v1.subscriptions.create({"customer": bare.id, "items": [{"price": price.id}]})
    assert sub.status == "incomplete"
    assert c.v1.invoices.retrieve(sub.latest_invoice).status == "open"

    declining = _customer_with_card(c, "pm_card_chargeCustomerFail")
    sub = c.v1.subscriptions.create({"customer": declining.id, "items": [{"price": price.id}]})
    assert sub.status == "incomplete"
    invoice = c.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.status == "open" and invoice.attempted and invoice.amount_paid == 0
    with pytest.raises(stripe.CardError):
        c.v1.subscriptions.create({"customer": declining.id, "items": [{"price": price.id}],
                                   "payment_behavior": "error_if_incomplete"})


def test_a_trial_subscription_is_trialing_and_a_canceled_one_leaves_the_list(stripe_guard):
    c, _ = stripe_guard
    price = c.v1.prices.create({"currency": "usd", "unit_amount": 500,
                                "recurring": {"interval": "month"},
                                "product_data": {"name": "Trial"}})
    customer = _customer_with_card(c)
    sub = c.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}],
                                     "trial_period_days": 14})
    assert sub.status == "trialing" and sub.trial_end - sub.trial_start == 14 * 86400
    assert c.v1.invoices.retrieve(sub.latest_invoice).amount_due == 0
    updated = c.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert updated.cancel_at_period_end is True
    canceled = c.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at
    assert c.v1.subscriptions.list({"customer": customer.id}).data == []
    assert [s.id for s in c.v1.subscriptions.list({"status": "all"}).data] == [sub.id]


def test_a_manual_invoice_collects_pending_items_then_is_finalized_and_paid(stripe_guard):
    c, _ = stripe_guard
    customer = _customer_with_card(c)
    item = c.v1.invoice_items.create({"customer": customer.id, "amount": 1250,
                                      "currency": "usd", "description": "Setup fee"})
    assert item.invoice is None
    draft = c.v1.invoices.create({"customer": customer.id,
                                  "pending_invoice_items_behavior": "include"})
    assert draft.status == "draft" and draft.amount_due == 1250
    opened = c.v1.invoices.finalize_invoice(draft.id)
    assert opened.status == "open" and opened.hosted_invoice_url and opened.number
    paid = c.v1.invoices.pay(opened.id)
    assert paid.status == "paid" and paid.amount_paid == 1250 and paid.amount_remaining == 0
    assert c.v1.invoice_items.retrieve(item.id).invoice == draft.id
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.invoices.pay(paid.id)


def test_products_are_updated_listed_and_deleted_once_they_have_no_prices(stripe_guard):
    c, _ = stripe_guard
    shirt = c.v1.products.create({"name": "T-shirt", "default_price_data": {
        "currency": "usd", "unit_amount": 2000}})
    assert shirt.default_price.startswith("price_")
    mug = c.v1.products.create({"name": "Mug", "id": "prod_mug"})
    assert mug.id == "prod_mug"
    assert c.v1.products.update(mug.id, {"active": False}).active is False
    assert [p.id for p in c.v1.products.list({"active": True}).data] == [shirt.id]
    assert c.v1.products.delete(mug.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.products.delete(shirt.id)
    price = c.v1.prices.retrieve(shirt.default_price, {"expand": ["product"]})
    assert price.product.name == "T-shirt" and price.type == "one_time"


def test_a_checkout_session_has_a_url_and_can_be_retrieved_listed_and_expired(stripe_guard):
    c, g = stripe_guard
    session = c.v1.checkout.sessions.create({
        "mode": "payment", "success_url": "https://shop.example/ok",
        "cancel_url": "https://shop.example/cancel", "client_reference_id": "order-9",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 1500,
                                       "product_data": {"name": "Poster"}},
                        "quantity": 3}]})
    assert session.url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert session.amount_total == 4500 and session.status == "open"
    assert session.payment_status == "unpaid"
    again = c.v1.checkout.sessions.retrieve(session.id)
    assert again.client_reference_id == "order-9" and again.url == session.url
    items = c.v1.checkout.sessions.line_items.list(session.id)
    assert items.data[0].quantity == 3 and items.data[0].description == "Poster"
    assert [s.id for s in c.v1.checkout.sessions.list().data] == [session.id]
    expired = c.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired" and expired.url is None
    assert g.upstream_attempts == []


def test_the_balance_follows_charges_and_refunds(stripe_guard):
    c, _ = stripe_guard
    empty = c.v1.balance.retrieve()
    assert empty.available[0].amount == 0 and empty.pending[0].amount == 0
    pi = c.v1.payment_intents.create({"amount": 10000, "currency": "usd", "confirm": True,
                                      "payment_method": "pm_card_visa"})
    c.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
    balance = c.v1.balance.retrieve()
    fee = round(10000 * 0.029) + 30
    assert balance.pending[0].amount == 10000 - fee - 1000
    txns = c.v1.balance_transactions.list()
    assert [t.type for t in txns.data] == ["refund", "charge"]
