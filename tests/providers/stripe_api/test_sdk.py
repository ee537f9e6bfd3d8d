"""The official stripe SDK, through guard, against the built-in Stripe pack."""

from __future__ import annotations

import pytest
import stripe


@pytest.fixture(autouse=True)
def restore_ca_bundle():
    saved = stripe.ca_bundle_path
    yield
    stripe.ca_bundle_path = saved


@pytest.fixture
def client(guard_proxy):
    g = guard_proxy()
    http = stripe.RequestsClient(proxy=g.url, verify_ssl_certs=True)
    stripe.ca_bundle_path = g.ca  # the SDK trusts only its own bundle unless told
    c = stripe.StripeClient("sk_test_guard", http_client=http, max_network_retries=0)
    return c, g


def test_the_sdk_creates_and_retrieves_a_customer_and_a_payment_intent(client):
    c, g = client
    customer = c.v1.customers.create({"email": "jenny@example.com", "metadata": {"plan": "pro"}})
    assert customer.id.startswith("cus_") and customer.email == "jenny@example.com"
    assert customer.metadata["plan"] == "pro"
    again = c.v1.customers.retrieve(customer.id)
    assert again.id == customer.id and again.email == "jenny@example.com"

    pi = c.v1.payment_intents.create({"amount": 2000, "currency": "usd",
                                      "customer": customer.id})
    assert pi.id.startswith("pi_") and pi.amount == 2000 and pi.customer == customer.id
    assert pi.status == "requires_payment_method"
    assert c.v1.payment_intents.retrieve(pi.id).amount == 2000
    assert g.upstream_attempts == []


def test_an_unknown_id_is_a_stripe_404(client):
    c, _ = client
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.customers.retrieve("cus_nope")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"


def test_a_legacy_charge_is_created(client):
    c, _ = client
    charge = c.v1.charges.create({"amount": 500, "currency": "eur", "source": "tok_visa"})
    assert charge.id.startswith("ch_") and charge.paid and charge.currency == "eur"


def test_a_url_stripe_does_not_have_is_unrecognized_not_forwarded(client):
    c, g = client
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.raw_request("get", "/v1/no_such_things")
    assert info.value.http_status == 404 and "Unrecognized request URL" in str(info.value)
    assert g.upstream_attempts == []


def test_a_live_key_is_blocked(guard_proxy):
    g = guard_proxy()
    stripe.ca_bundle_path = g.ca
    c = stripe.StripeClient("sk_live_realmoney", max_network_retries=0,
                            http_client=stripe.RequestsClient(proxy=g.url))
    with pytest.raises(stripe.PermissionError) as info:
        c.v1.customers.create({"email": "x@y.z"})
    assert info.value.http_status == 403 and "stripe.live-key" in str(info.value)
