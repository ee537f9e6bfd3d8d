"""Payments through guard with the official stripe SDK: customers, payment methods,
payment intents (their status machine and declines), charges and refunds."""

from __future__ import annotations

import pytest
import stripe

from tests.providers.stripe_api.conftest import sdk


def test_a_payment_is_created_confirmed_retrieved_refunded_and_listed(stripe_guard):
    c, g = stripe_guard
    customer = c.v1.customers.create({"email": "jenny@example.com", "metadata": {"order": "7"}})
    pi = c.v1.payment_intents.create({"amount": 2000, "currency": "usd",
                                      "customer": customer.id, "payment_method": "pm_card_visa"})
    assert pi.status == "requires_confirmation" and pi.payment_method.startswith("pm_")
    assert pi.payment_method != "pm_card_visa"  # a test id becomes a new PaymentMethod

    pi = c.v1.payment_intents.confirm(pi.id)
    assert pi.status == "succeeded" and pi.amount_received == 2000
    assert pi.latest_charge.startswith("ch_")

    again = c.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge", "customer"]})
    assert again.latest_charge.paid and again.latest_charge.captured
    assert again.latest_charge.payment_method_details.card.last4 == "4242"
    assert again.customer.email == "jenny@example.com"

    partial = c.v1.refunds.create({"payment_intent": pi.id, "amount": 500})
    assert partial.status == "succeeded" and partial.charge == pi.latest_charge
    charge = c.v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 500 and charge.refunded is False
    rest = c.v1.refunds.create({"charge": charge.id})
    assert rest.amount == 1500
    charge = c.v1.charges.retrieve(charge.id)
    assert charge.amount_refunded == 2000 and charge.refunded is True
    assert [r.id for r in charge.refunds.data] == [rest.id, partial.id]

    refunds = c.v1.refunds.list({"charge": charge.id})
    assert [r.id for r in refunds.data] == [rest.id, partial.id]
    intents = c.v1.payment_intents.list({"customer": customer.id, "expand": ["data.customer"]})
    assert [p.id for p in intents.data] == [pi.id]
    assert intents.data[0].customer.id == customer.id and intents.url == "/v1/payment_intents"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.refunds.create({"charge": charge.id})
    assert info.value.code == "charge_already_refunded"
    assert g.upstream_attempts == []


@pytest.mark.parametrize("pm, code, decline_code, message", [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline", "Your card was declined."),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds",
     "Your card has insufficient funds."),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card",
     "Your card has expired."),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc",
     "Your card's security code is incorrect."),
])
def test_a_declining_test_card_is_a_402_card_error_and_leaves_the_intent_retryable(
        stripe_guard, pm, code, decline_code, message):
    c, g = stripe_guard
    pi = c.v1.payment_intents.create({"amount": 1099, "currency": "usd"})
    with pytest.raises(stripe.CardError) as info:
        c.v1.payment_intents.confirm(pi.id, {"payment_method": pm})
    err = info.value
    assert err.http_status == 402 and err.code == code and err.user_message == message
    assert err.error.decline_code == decline_code and err.error.type == "card_error"
    assert err.error.payment_intent.id == pi.id
    failed = c.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method" and failed.payment_method is None
    assert failed.last_payment_error.decline_code == decline_code
    charge = c.v1.charges.retrieve(failed.latest_charge)
    assert charge.status == "failed" and charge.failure_code == code and not charge.paid

    ok = c.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert ok.status == "succeeded" and ok.latest_charge != charge.id
    assert g.upstream_attempts == []


def test_manual_capture_authorizes_then_captures_part_and_releases_the_rest(stripe_guard):
    c, g = stripe_guard
    pi = c.v1.payment_intents.create({"amount": 5000, "currency": "eur",
                                      "capture_method": "manual",
                                      "payment_method": "pm_card_mastercard", "confirm": True})
    assert pi.status == "requires_capture" and pi.amount_capturable == 5000
    charge = c.v1.charges.retrieve(pi.latest_charge)
    assert charge.captured is False and charge.balance_transaction is None
    assert charge.payment_method_details.card.brand == "mastercard"

    pi = c.v1.payment_intents.capture(pi.id, {"amount_to_capture": 3000})
    assert pi.status == "succeeded" and pi.amount_received == 3000 and pi.amount_capturable == 0
    charge = c.v1.charges.retrieve(pi.latest_charge, {"expand": ["balance_transaction"]})
    assert charge.captured and charge.amount_captured == 3000 and charge.amount_refunded == 2000
    assert charge.balance_transaction.amount == 3000 and charge.balance_transaction.fee > 0

    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.payment_intents.capture(pi.id)
    assert info.value.code == "payment_intent_unexpected_state"
    assert "status of succeeded" in info.value.user_message
    assert g.upstream_attempts == []


def test_canceling_an_authorized_intent_releases_the_charge(stripe_guard):
    c, _ = stripe_guard
    pi = c.v1.payment_intents.create({"amount": 700, "currency": "usd",
                                      "capture_method": "manual",
                                      "payment_method": "pm_card_visa", "confirm": True})
    pi = c.v1.payment_intents.cancel(pi.id, {"cancellation_reason": "abandoned"})
    assert pi.status == "canceled" and pi.cancellation_reason == "abandoned" and pi.canceled_at
    assert c.v1.charges.retrieve(pi.latest_charge).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.payment_intents.confirm(pi.id)
    assert "status of canceled" in info.value.user_message


def test_a_payment_intent_is_updated_while_open_but_not_its_amount_once_paid(stripe_guard):
    c, _ = stripe_guard
    pi = c.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    pi = c.v1.payment_intents.update(pi.id, {"amount": 1200, "metadata": {"cart": "42"}})
    assert pi.amount == 1200 and pi.metadata["cart"] == "42"
    pi = c.v1.payment_intents.update(pi.id, {"payment_method": "pm_card_amex"})
    assert pi.status == "requires_confirmation"
    pi = c.v1.payment_intents.confirm(pi.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.payment_intents.update(pi.id, {"amount": 5})
    assert info.value.code == "payment_intent_unexpected_state"
    paid = c.v1.payment_intents.update(pi.id, {"metadata": {"shipped": "yes"}})
    assert paid.metadata.to_dict() == {"cart": "42", "shipped": "yes"}


def test_a_3d_secure_card_asks_for_action(stripe_guard):
    c, _ = stripe_guard
    pi = c.v1.payment_intents.create({"amount": 1000, "currency": "usd", "confirm": True,
                                      "payment_method": "pm_card_threeDSecure2Required"})
    assert pi.status == "requires_action" and pi.next_action.type == "use_stripe_sdk"


def test_the_legacy_charges_api_charges_a_token_and_declines_a_declining_one(stripe_guard):
    c, g = stripe_guard
    charge = c.v1.charges.create({"amount": 500, "currency": "eur", "source": "tok_visa",
                                  "description": "legacy"})
    assert charge.paid and charge.status == "succeeded" and charge.source.object == "card"
    assert charge.source.brand == "Visa" and charge.payment_method == charge.source.id
    with pytest.raises(stripe.CardError) as info:
        c.v1.charges.create({"amount": 500, "currency": "eur",
                             "source": "tok_chargeDeclinedInsufficientFunds"})
    assert info.value.error.decline_code == "insufficient_funds"
    failed = c.v1.charges.retrieve(info.value.error.charge)
    assert failed.status == "failed" and failed.outcome.type == "issuer_declined"
    uncaptured = c.v1.charges.create({"amount": 900, "currency": "usd", "source": "tok_amex",
                                      "capture": False})
    assert uncaptured.captured is False
    assert c.v1.charges.capture(uncaptured.id).captured is True
    listed = c.v1.charges.list({"limit": 2})
    assert len(listed.data) == 2 and listed.has_more is True
    assert g.upstream_attempts == []


def test_customers_are_created_updated_listed_paged_and_deleted(stripe_guard):
    c, _ = stripe_guard
    made = [c.v1.customers.create({"email": f"u{i}@example.com", "name": f"User {i}"})
            for i in range(5)]
    updated = c.v1.customers.update(made[0].id, {"phone": "+15555550100",
                                                 "metadata": {"tier": "gold"},
                                                 "address": {"city": "Berlin"}})
    assert updated.phone == "+15555550100" and updated.address.city == "Berlin"
    assert updated.address.line1 is None and updated.metadata["tier"] == "gold"

    first = c.v1.customers.list({"limit": 2})
    assert [x.id for x in first.data] == [made[4].id, made[3].id] and first.has_more
    second = c.v1.customers.list({"limit": 2, "starting_after": first.data[-1].id})
    assert [x.id for x in second.data] == [made[2].id, made[1].id] and second.has_more
    back = c.v1.customers.list({"limit": 2, "ending_before": second.data[0].id})
    assert [x.id for x in back.data] == [made[4].id, made[3].id]
    assert [x.id for x in c.v1.customers.list({"email": "u1@example.com"}).data] == [made[1].id]
    every = [x.id for x in c.v1.customers.list({"limit": 2}).auto_paging_iter()]
    assert every == [m.id for m in reversed(made)]

    gone = c.v1.customers.delete(made[2].id)
    assert gone.deleted is True and gone.id == made[2].id
    assert c.v1.customers.retrieve(made[2].id).deleted is True
    assert made[2].id not in [x.id for x in c.v1.customers.list({"limit": 100}).data]
    found = c.v1.customers.search({"query": "email:'u3@example.com'"})
    assert [x.id for x in found.data] == [made[3].id]


def test_payment_methods_attach_detach_and_list_by_customer(stripe_guard):
    c, _ = stripe_guard
    customer = c.v1.customers.create({"name": "Card Holder"})
    visa = c.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    made = c.v1.payment_methods.create({"type": "card", "card": {"token": "tok_mastercard"},
                                        "billing_details": {"name": "Card Holder"}})
    assert made.card.brand == "mastercard" and made.billing_details.name == "Card Holder"
    c.v1.payment_methods.attach(made.id, {"customer": customer.id})
    listed = c.v1.customers.payment_methods.list(customer.id)
    assert [pm.id for pm in listed.data] == [made.id, visa.id]
    assert [pm.id for pm in c.v1.payment_methods.list({"customer": customer.id,
                                                       "type": "card"}).data] == [made.id,
                                                                                 visa.id]
    detached = c.v1.payment_methods.detach(visa.id)
    assert detached.customer is None
    assert [pm.id for pm in c.v1.customers.payment_methods.list(customer.id).data] == [made.id]
    with pytest.raises(stripe.CardError) as info:
        c.v1.payment_methods.attach("pm_card_chargeDeclined", {"customer": customer.id})
    assert info.value.code == "card_declined"
    fails_later = c.v1.payment_methods.attach("pm_card_chargeCustomerFail",
                                              {"customer": customer.id})
    with pytest.raises(stripe.CardError):
        c.v1.payment_intents.create({"amount": 1000, "currency": "usd", "confirm": True,
                                     "customer": customer.id,
                                     "payment_method": fails_later.id})


def test_a_sandbox_never_reaches_stripe_even_for_unknown_endpoints(guard_proxy, upstream):
    g = guard_proxy()
    c = sdk(g)
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.raw_request("get", "/v1/no_such_things")
    assert info.value.http_status == 404 and "Unrecognized request URL" in str(info.value)
    assert c.v1.disputes.list().object == "list"  # answered from Stripe's OpenAPI description
    assert g.upstream_attempts == [] and upstream.connections == 0
