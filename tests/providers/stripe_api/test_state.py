"""Sandbox worlds: kept apart, persisted across a restart, exported and imported, forked
from a seed file, and the same for the same seed."""

from __future__ import annotations

import json

import pytest
import stripe

from guard.cli import main
from tests.providers.stripe_api.conftest import sdk


def test_two_sandboxes_do_not_see_each_others_objects(guard_proxy):
    g = guard_proxy(sandbox_from="proxy-user")
    alice, bob = sdk(g, "alice"), sdk(g, "bob")
    customer = alice.v1.customers.create({"email": "alice@example.com"})
    assert alice.v1.customers.retrieve(customer.id).email == "alice@example.com"
    with pytest.raises(stripe.InvalidRequestError) as info:
        bob.v1.customers.retrieve(customer.id)
    assert info.value.http_status == 404
    assert bob.v1.customers.list().data == []
    assert [x.id for x in alice.v1.customers.list().data] == [customer.id]


def test_a_restart_with_state_keeps_the_world(guard_proxy, tmp_path):
    state = tmp_path / "state"
    first = guard_proxy(state=state, seed=3)
    c = sdk(first)
    customer = c.v1.customers.create({"email": "kept@example.com"})
    pi = c.v1.payment_intents.create({"amount": 1500, "currency": "usd", "confirm": True,
                                      "customer": customer.id, "payment_method": "pm_card_visa"})
    first.stop()

    second = guard_proxy(state=state, seed=3)
    c = sdk(second)
    assert c.v1.customers.retrieve(customer.id).email == "kept@example.com"
    assert c.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    refund = c.v1.refunds.create({"payment_intent": pi.id})
    assert c.v1.charges.retrieve(pi.latest_charge).refunded and refund.amount == 1500
    newer = c.v1.customers.create({"email": "new@example.com"})
    assert newer.id != customer.id  # ids never repeat after a restart
    assert [x.id for x in c.v1.customers.list().data] == [newer.id, customer.id]


def test_a_snapshot_is_exported_and_imported_into_a_second_sandbox(guard_proxy, tmp_path,
                                                                   capsys):
    state, out = tmp_path / "state", tmp_path / "alice.json"
    g = guard_proxy(state=state, sandbox_from="proxy-user")
    alice = sdk(g, "alice")
    product = alice.v1.products.create({"name": "Forkable", "default_price_data": {
        "currency": "usd", "unit_amount": 1200, "recurring": {"interval": "month"}}})
    customer = alice.v1.customers.create({"email": "template@example.com"})

    assert main(["state", "export", "--state", str(state), "--sandbox", "alice", str(out)]) == 0
    snap = json.loads(out.read_text())
    assert product.id in snap["collections"]["stripe.products"]
    assert main(["state", "import", "--state", str(state), "--sandbox", "carol", str(out)]) == 0
    assert main(["state", "list", "--state", str(state)]) == 0
    assert "carol" in capsys.readouterr().out

    carol = sdk(g, "carol")
    assert carol.v1.products.retrieve(product.id).name == "Forkable"
    assert carol.v1.customers.retrieve(customer.id).email == "template@example.com"
    sub = carol.v1.subscriptions.create({"customer": customer.id,
                                         "items": [{"price": product.default_price}]})
    assert sub.status == "incomplete"  # the imported customer has no card: as in Stripe
    assert alice.v1.subscriptions.list().data == []  # carol's changes stay in carol
    assert main(["state", "export", "--state", str(state), "--sandbox", "nobody",
                 str(tmp_path / "x.json")]) == 1


def test_a_world_file_is_forked_into_every_new_sandbox(guard_proxy):
    g = guard_proxy(world="stripe-catalogue", sandbox_from="proxy-user")
    alice, bob = sdk(g, "alice"), sdk(g, "bob")
    prices = alice.v1.prices.list({"lookup_keys": ["pro_monthly"], "expand": ["data.product"]})
    assert prices.data[0].unit_amount == 2900 and prices.data[0].product.name == "Pro"
    alice.v1.products.update("prod_pro", {"name": "Pro (renamed)"})
    assert bob.v1.products.retrieve("prod_pro").name == "Pro"
    customer = bob.v1.customers.create()
    card = bob.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    sub = bob.v1.subscriptions.create({"customer": customer.id, "default_payment_method": card.id,
                                       "items": [{"price": prices.data[0].id}]})
    assert sub.status == "active"
    assert g.upstream_attempts == []


def test_a_restart_with_a_world_file_and_state_keeps_the_seed_and_the_changes(guard_proxy,
                                                                              tmp_path):
    # The journal of a sandbox started from --world begins with that world: a restart
    # (with or without --world) reads back the seeded objects and what was done to them.
    state = tmp_path / "state"
    first = guard_proxy(world="stripe-catalogue", state=state, seed=3)
    c = sdk(first)
    c.v1.products.update("prod_pro", {"name": "Pro (renamed)"})
    customer = c.v1.customers.create({"email": "kept@example.com"})
    first.stop()
    for world in ("stripe-catalogue", None):
        again = guard_proxy(world=world, state=state, seed=3)
        c = sdk(again)
        assert c.v1.products.retrieve("prod_pro").name == "Pro (renamed)"
        assert c.v1.prices.list({"lookup_keys": ["pro_monthly"]}).data[0].unit_amount == 2900
        assert c.v1.customers.retrieve(customer.id).email == "kept@example.com"
        again.stop()


def test_a_missing_world_file_stops_start_up(tmp_path):
    assert main(["run", "--world", str(tmp_path / "nope.json"), "--confdir",
                 str(tmp_path), "--listen-port", "0"]) == 1


def _script(c: stripe.StripeClient) -> list[str]:
    """The same requests, with fixed idempotency keys; returns every response body."""
    bodies = []

    def keep(obj: stripe.StripeObject) -> None:
        assert obj.last_response is not None
        bodies.append(obj.last_response.body)

    n = iter(range(1000))

    def k() -> dict[str, str]:
        return {"idempotency_key": f"key-{next(n)}"}

    customer = c.v1.customers.create({"email": "det@example.com", "name": "Det"}, k())
    keep(customer)
    keep(c.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id}, k()))
    pi = c.v1.payment_intents.create({"amount": 4200, "currency": "usd", "confirm": True,
                                      "customer": customer.id,
                                      "payment_method": "pm_card_mastercard"}, k())
    keep(pi)
    keep(c.v1.refunds.create({"payment_intent": pi.id, "amount": 200}, k()))
    keep(c.v1.products.create({"name": "Det", "default_price_data": {
        "currency": "usd", "unit_amount": 800, "recurring": {"interval": "week"}}}, k()))
    keep(c.v1.checkout.sessions.create({"mode": "payment", "success_url": "https://x.test/",
                                        "line_items": [{"price_data": {
                                            "currency": "usd", "unit_amount": 100,
                                            "product_data": {"name": "P"}}, "quantity": 1}]},
                                       k()))
    keep(c.v1.events.list({"limit": 100}))
    keep(c.v1.balance.retrieve())
    return bodies


def test_the_same_seed_and_requests_give_identical_response_bodies(guard_proxy):
    first = guard_proxy(seed=42)
    one = _script(sdk(first))
    first.stop()
    again = _script(sdk(guard_proxy(seed=42)))
    assert one == again
    other = _script(sdk(guard_proxy(seed=43)))
    assert other != one
