"""Connect (Stripe-Account), tokens beyond cards, and what the SDK's newer API version
sends (pricing[price], metadata on a canceled subscription), through a real guard."""

from __future__ import annotations

import pytest
import stripe


def _price(c: stripe.StripeClient, **extra: object) -> stripe.Price:
    product = c.v1.products.create({"name": "Seat"})
    return c.v1.prices.create({"product": product.id, "currency": "usd", "unit_amount": 700,
                               **extra})


def test_stripe_account_puts_the_call_in_that_accounts_world(stripe_guard):
    c, _ = stripe_guard
    mine = c.v1.customers.create({"email": "platform@example.com"})
    theirs = c.v1.customers.create({"email": "connected@example.com"},
                                   {"stripe_account": "acct_1Connected"})
    platform_ids = [x.id for x in c.v1.customers.list().data]
    connected_ids = [x.id for x in c.v1.customers.list(
        options={"stripe_account": "acct_1Connected"}).data]
    assert mine.id in platform_ids and theirs.id not in platform_ids
    assert connected_ids == [theirs.id]
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.customers.retrieve(theirs.id)
    with pytest.raises(stripe.PermissionError) as info:
        c.v1.customers.list(options={"stripe_account": "not-an-account"})
    assert info.value.http_status == 403
    assert info.value.json_body["error"]["code"] == "account_invalid"


def test_tokens_for_bank_accounts_and_pii(stripe_guard):
    c, _ = stripe_guard
    bank = c.v1.tokens.create({"bank_account": {
        "country": "US", "currency": "usd", "account_holder_name": "Jenny Rosen",
        "account_holder_type": "individual", "routing_number": "110000000",
        "account_number": "000123456789"}})
    assert bank.id.startswith("tok_") and bank.type == "bank_account"
    assert bank.bank_account.last4 == "6789" and bank.bank_account.routing_number == "110000000"
    pii = c.v1.tokens.create({"pii": {"id_number": "000000000"}})
    assert pii.type == "pii" and c.v1.tokens.retrieve(pii.id).id == pii.id
    person = c.v1.tokens.create({"person": {"first_name": "Jenny"}})
    assert person.type == "person"


def test_invoice_items_take_pricing_price_as_the_newer_api_sends_it(stripe_guard):
    c, _ = stripe_guard
    customer = c.v1.customers.create({"email": "ii@example.com"})
    price = _price(c)
    item = c.v1.invoice_items.create({"customer": customer.id, "pricing": {"price": price.id},
                                      "quantity": 2})
    assert item.amount == 1400 and item.pricing.price_details.price == price.id
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.invoice_items.create({"customer": customer.id, "pricing": {"price": "price_x"}})
    assert info.value.param == "pricing[price]" and info.value.http_status == 404


def test_a_canceled_subscription_takes_a_metadata_update_and_nothing_else(stripe_guard):
    c, _ = stripe_guard
    customer = c.v1.customers.create({"email": "sub@example.com"})
    price = _price(c, recurring={"interval": "month"})
    sub = c.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}],
                                     "payment_behavior": "default_incomplete"})
    c.v1.subscriptions.cancel(sub.id)
    updated = c.v1.subscriptions.update(sub.id, {"metadata": {"reason": "moved"}})
    assert updated.status == "canceled" and updated.metadata["reason"] == "moved"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.subscriptions.update(sub.id, {"description": "again"})
    assert info.value.http_status == 400 and info.value.code is None
    assert info.value.param == "description"


def test_promotion_codes_take_the_newer_promotion_hash_instead_of_coupon(stripe_guard):
    c, _ = stripe_guard
    coupon = c.v1.coupons.create({"percent_off": 10, "duration": "once"})
    code = c.v1.promotion_codes.create({"promotion": {"type": "coupon", "coupon": coupon.id},
                                        "code": "SAVE10"})
    assert code.id.startswith("promo_") and code.code == "SAVE10"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.promotion_codes.create({"promotion": {"type": "voucher", "coupon": coupon.id}})
    assert info.value.param == "promotion[type]"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.promotion_codes.create({"promotion": {"coupon": coupon.id}})
    assert info.value.code == "parameter_missing" and info.value.param == "promotion[type]"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.promotion_codes.create({"code": "NOPROMO"})
    assert info.value.code == "parameter_missing" and info.value.param == "promotion"
