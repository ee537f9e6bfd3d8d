"""Stripe's error shapes and Idempotency-Key, as the SDK (and plain HTTP) sees them."""

from __future__ import annotations

import pytest
import requests
import stripe

from tests.providers.stripe_api.conftest import sdk


def test_a_missing_required_parameter_is_a_400_naming_the_parameter(stripe_guard):
    c, _ = stripe_guard
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.payment_intents.create({"currency": "usd"})
    e = info.value
    assert e.http_status == 400 and e.param == "amount" and e.code == "parameter_missing"
    assert e.user_message == "Missing required param: amount."
    assert e.json_body["error"]["type"] == "invalid_request_error"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.subscriptions.create({"customer": c.v1.customers.create().id,
                                   "items": [{"quantity": 1}]})
    assert info.value.param == "items[0][price]"


def test_a_bad_value_is_a_400_and_changes_nothing(stripe_guard):
    c, _ = stripe_guard
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.payment_intents.create({"amount": "twelve", "currency": "usd"})
    assert info.value.user_message == "Invalid integer: twelve" and info.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.payment_intents.create({"amount": 20, "currency": "usd"})
    assert info.value.code == "amount_too_small"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.customers.list({"limit": 101})
    assert info.value.param == "limit"
    assert c.v1.payment_intents.list().data == []


@pytest.mark.parametrize("call, message", [
    (lambda c: c.v1.customers.retrieve("cus_nope"), "No such customer: 'cus_nope'"),
    (lambda c: c.v1.payment_intents.retrieve("pi_nope"), "No such payment_intent: 'pi_nope'"),
    (lambda c: c.v1.charges.retrieve("ch_nope"), "No such charge: 'ch_nope'"),
    (lambda c: c.v1.payment_methods.retrieve("pm_nope"), "No such PaymentMethod: 'pm_nope'"),
    (lambda c: c.v1.prices.retrieve("price_nope"), "No such price: 'price_nope'"),
    (lambda c: c.v1.subscriptions.retrieve("sub_nope"), "No such subscription: 'sub_nope'"),
])
def test_an_unknown_id_is_a_404_resource_missing_in_stripes_words(stripe_guard, call, message):
    c, _ = stripe_guard
    with pytest.raises(stripe.InvalidRequestError) as info:
        call(c)
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    assert info.value.user_message == message and info.value.param == "id"


def test_an_unknown_id_inside_parameters_names_that_parameter(stripe_guard):
    c, _ = stripe_guard
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.payment_intents.create({"amount": 1000, "currency": "usd", "customer": "cus_x"})
    assert info.value.param == "customer" and info.value.user_message == (
        "No such customer: 'cus_x'")


def test_an_unknown_url_is_a_404_unrecognized_request_url(stripe_guard):
    c, _ = stripe_guard
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.raw_request("get", "/v1/no_such_things")
    assert info.value.http_status == 404
    assert info.value.user_message.startswith(
        "Unrecognized request URL (GET: /v1/no_such_things).")


def test_a_missing_or_malformed_key_is_a_401(stripe_guard):
    _, g = stripe_guard
    with pytest.raises(stripe.AuthenticationError) as info:
        sdk(g, key="not-a-key").v1.customers.list()
    assert info.value.http_status == 401 and "Invalid API Key provided" in str(info.value)
    url = "https://api.stripe.com/v1/customers"
    bare = requests.get(url, proxies=g.proxies, verify=g.ca)
    assert bare.status_code == 401
    assert bare.json()["error"]["message"].startswith("You did not provide an API key.")
    basic = requests.get(url, proxies=g.proxies, verify=g.ca, auth=("sk_test_curl", ""))
    assert basic.status_code == 200 and basic.json()["object"] == "list"
    publishable = requests.get(url, proxies=g.proxies, verify=g.ca,
                               headers={"Authorization": "Bearer pk_test_123"})
    assert publishable.status_code == 401
    assert g.upstream_attempts == []


def test_the_same_idempotency_key_replays_the_first_response(stripe_guard):
    c, _ = stripe_guard
    first = c.v1.customers.create({"email": "once@example.com"}, {"idempotency_key": "k-1"})
    again = c.v1.customers.create({"email": "once@example.com"}, {"idempotency_key": "k-1"})
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.body == first.last_response.body
    assert len(c.v1.customers.list().data) == 1

    pi = c.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    for _ in range(2):  # a decline is saved and replayed too
        with pytest.raises(stripe.CardError) as info:
            c.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_chargeDeclined"},
                                         {"idempotency_key": "k-decline"})
    assert info.value.headers["Idempotent-Replayed"] == "true"
    assert len(c.v1.charges.list({"payment_intent": pi.id}).data) == 1


def test_the_same_idempotency_key_with_other_parameters_is_an_idempotency_error(stripe_guard):
    c, _ = stripe_guard
    c.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k-2"})
    with pytest.raises(stripe.IdempotencyError) as info:
        c.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "k-2"})
    assert info.value.http_status == 400
    assert info.value.json_body["error"]["type"] == "idempotency_error"
    assert "'k-2'" in info.value.user_message
    with pytest.raises(stripe.IdempotencyError):
        c.v1.products.create({"name": "x"}, {"idempotency_key": "k-2"})
    assert [x.email for x in c.v1.customers.list().data] == ["a@example.com"]


def test_expanding_a_field_that_is_not_expandable_is_a_400(stripe_guard):
    c, _ = stripe_guard
    customer = c.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.customers.retrieve(customer.id, {"expand": ["email"]})
    assert info.value.user_message == "This property cannot be expanded (email)."
    assert info.value.param == "expand[0]"


def test_non_ascii_digits_are_text_to_stripe_not_numbers_and_not_a_crash(stripe_guard):
    # "²" passes str.isdigit() but int() refuses it: a metadata key of them is a key,
    # an integer parameter of them is Stripe's invalid-integer 400, not a guard error
    c, g = stripe_guard
    customer = c.v1.customers.create({"metadata": {"²": "squared", "0": "zero"}})
    assert customer.metadata.to_dict() == {"²": "squared", "0": "zero"}
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.customers.list({"limit": "²"})
    assert info.value.param == "limit" and info.value.code == "parameter_invalid_integer"
    r = requests.post("https://api.stripe.com/v1/customers",
                      data="metadata[0]=a&metadata[%C2%B2]=b&email=x%40y.test",
                      headers={"Authorization": "Bearer sk_test_guard",
                               "Content-Type": "application/x-www-form-urlencoded"},
                      proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 200 and r.json()["metadata"] == {"0": "a", "²": "b"}
    assert g.upstream_attempts == []


def test_a_form_key_nested_past_racks_limit_is_a_stripe_400_not_a_crash(stripe_guard):
    # 5000 levels of a[x][x]... once ran guard out of recursion (a guard 500); Stripe's
    # Rack stops at 100 levels, and so does guard, with an answer the SDK can read
    c, g = stripe_guard
    def post(body: str) -> requests.Response:
        return requests.post("https://api.stripe.com/v1/customers", data=body,
                             headers={"Authorization": "Bearer sk_test_guard",
                                      "Content-Type": "application/x-www-form-urlencoded"},
                             proxies=g.proxies, verify=g.ca, timeout=30)
    r = post("metadata" + "[x]" * 5000 + "=1")
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and "nested 5000 levels" in error["message"]
    assert r.headers["X-Guard-Rule"] == "guard.limit.nesting"
    r = post("email=a%40b.test&description" + "[x]" * 100 + "=1")  # at the limit: Stripe's own
    assert r.status_code == 400 and r.json()["error"].get("param") == "description"
    assert c.v1.customers.list().data == [] and g.upstream_attempts == []
