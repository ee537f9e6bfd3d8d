"""Stripe operations no hand-written handler answers, answered from Stripe's OpenAPI
description, judged by the official SDK through a real guard proxy."""

from __future__ import annotations

import pytest
import stripe

from tests.providers.stripe_api.conftest import sdk


def test_setup_intents_keep_state_through_the_sdk(stripe_guard):
    c, g = stripe_guard
    cus = c.v1.customers.create({"email": "jenny@example.com"})
    si = c.v1.setup_intents.create({"customer": cus.id, "payment_method_types": ["card"],
                                    "metadata": {"order": "42"}})
    assert si.id.startswith("seti_") and si.object == "setup_intent"
    assert si.customer == cus.id and si.metadata["order"] == "42" and si.livemode is False
    assert c.v1.setup_intents.retrieve(si.id).id == si.id
    updated = c.v1.setup_intents.update(si.id, {"metadata": {"order": "43", "x": "y"}})
    assert updated.metadata.to_dict() == {"order": "43", "x": "y"}
    assert [s.id for s in c.v1.setup_intents.list({"customer": cus.id}).data] == [si.id]
    assert c.v1.setup_intents.cancel(si.id).status == "canceled"
    assert g.upstream_attempts == []


def test_a_deleted_coupon_is_gone(stripe_guard):
    c, _ = stripe_guard
    coupon = c.v1.coupons.create({"percent_off": 25, "duration": "once", "name": "Spring"})
    assert coupon.percent_off == 25 and coupon.duration == "once" and coupon.name == "Spring"
    deleted = c.v1.coupons.delete(coupon.id)
    assert deleted.deleted is True and deleted.id == coupon.id
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.coupons.retrieve(coupon.id)
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    assert info.value.user_message == f"No such coupon: '{coupon.id}'"


@pytest.mark.parametrize(("call", "param", "code", "message"), [
    (lambda c: c.v1.customers.create({"emial": "a@b.co"}), "emial", "parameter_unknown",
     "Received unknown parameter: emial"),
    (lambda c: c.v1.customers.create({"address": {"citty": "Paris"}}), "address[citty]",
     "parameter_unknown", "Received unknown parameter: address[citty]"),
    (lambda c: c.v1.customers.create({"email": "not-an-email"}), "email", "email_invalid",
     "Invalid email address: not-an-email"),
    (lambda c: c.v1.payment_intents.create({"amount": 100, "currency": "usdx"}), "currency",
     None, "Invalid currency: usdx."),
    (lambda c: c.v1.setup_intents.create({"usage": "sometimes"}), "usage", None,
     "Invalid usage: must be one of off_session, or on_session"),
    (lambda c: c.v1.coupons.create({"percent_off": "lots"}), "percent_off", None,
     "Invalid decimal: lots"),
    (lambda c: c.v1.products.create({}), "name", "parameter_missing",
     "Missing required param: name."),
    (lambda c: c.v1.customers.list({"limit": "ten"}), "limit", "parameter_invalid_integer",
     "Invalid integer: ten"),
    (lambda c: c.v1.coupons.create({"percent_off": 5, "metadata": {
        f"k{i}": "v" for i in range(51)}}), "metadata", None,
     "Invalid metadata: metadata can have up to 50 keys"),
])
def test_stripe_validation_errors_on_every_endpoint(stripe_guard, call, param, code, message):
    c, _ = stripe_guard
    with pytest.raises(stripe.InvalidRequestError) as info:
        call(c)
    e = info.value
    assert e.http_status == 400 and e.param == param and e.code == code
    assert e.user_message.startswith(message)


def test_search_uses_stripe_query_language(stripe_guard):
    c, _ = stripe_guard
    gizmo = c.v1.products.create({"name": "Gizmo Pro", "metadata": {"tier": "pro"}})
    c.v1.products.create({"name": "Widget"})
    found = c.v1.products.search({"query": "name~'Gizmo' AND metadata['tier']:'pro'"})
    assert found.object == "search_result" and [p.id for p in found.data] == [gizmo.id]
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.products.search({"query": "name:"})


def test_objects_under_a_customer_belong_to_that_customer(stripe_guard):
    c, _ = stripe_guard
    a = c.v1.customers.create({"email": "a@example.com"})
    b = c.v1.customers.create({"email": "b@example.com"})
    tax_id = c.v1.customers.tax_ids.create(a.id, {"type": "eu_vat", "value": "DE123456789"})
    assert tax_id.customer == a.id and tax_id.value == "DE123456789"
    assert [t.id for t in c.v1.customers.tax_ids.list(a.id).data] == [tax_id.id]
    assert c.v1.customers.tax_ids.list(b.id).data == []
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.customers.tax_ids.list("cus_missing")
    assert info.value.http_status == 404


def test_objects_the_agent_cannot_create_exist_on_first_reference(stripe_guard):
    c, _ = stripe_guard
    dispute = c.v1.disputes.retrieve("dp_1OutsideTheAgent")
    assert dispute.id == "dp_1OutsideTheAgent" and dispute.object == "dispute"
    c.v1.disputes.update(dispute.id, {"metadata": {"case": "7"}})
    assert c.v1.disputes.retrieve(dispute.id).metadata["case"] == "7"


def test_invoice_preview_and_upcoming(stripe_guard):
    c, _ = stripe_guard
    cus = c.v1.customers.create({"email": "p@example.com"})
    preview = c.v1.invoices.create_preview({"customer": cus.id})
    assert preview.object == "invoice"
    upcoming = c.raw_request("get", "/v1/invoices/upcoming", customer=cus.id)
    assert c.deserialize(upcoming, api_mode="V1").object == "invoice"


def test_expand_follows_the_description_into_hand_written_objects(stripe_guard):
    c, _ = stripe_guard
    cus = c.v1.customers.create({"email": "x@example.com", "name": "Jenny"})
    si = c.v1.setup_intents.create({"customer": cus.id, "expand": ["customer"]})
    assert si.customer.id == cus.id and si.customer.email == "x@example.com"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.setup_intents.create({"expand": ["usage"]})
    assert "cannot be expanded" in info.value.user_message


def test_an_idempotency_key_replays_a_generated_operation(stripe_guard):
    c, _ = stripe_guard
    first = c.v1.coupons.create({"percent_off": 10, "duration": "once"},
                                {"idempotency_key": "k-1"})
    again = c.v1.coupons.create({"percent_off": 10, "duration": "once"},
                                {"idempotency_key": "k-1"})
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"


def test_the_same_seed_gives_the_same_generated_objects(guard_proxy):
    bodies = []
    for _ in range(2):
        g = guard_proxy(seed=5)
        coupon = sdk(g).v1.coupons.create({"percent_off": 5, "duration": "once"},
                                          {"idempotency_key": "same"})
        bodies.append(coupon.last_response.body)
        g.stop()
    assert bodies[0] == bodies[1]
