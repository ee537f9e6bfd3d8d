"""A create in a polymorphic collection makes the type Stripe makes, through a real guard
and the official SDK: an external account or customer source from a card token or card
hash is a ``card`` (with its ``account`` or ``customer``), from a bank token or bank hash a
``bank_account``; the token's object is the one kept, and a token is used once. A quote's
line items are kept as Stripe's ``item`` objects, priced from their prices."""

from __future__ import annotations

import pytest
import stripe


@pytest.fixture
def connect(stripe_guard):
    c, g = stripe_guard
    return c, g, c.v1.accounts.create({"type": "custom", "country": "US"}).id


def test_a_card_token_makes_a_card_external_account_of_that_account(connect):
    c, g, account = connect
    token = c.v1.tokens.create({"card": {"number": "4000056655665556", "exp_month": "12",
                                         "exp_year": "2030", "currency": "usd"}})
    card = c.v1.accounts.external_accounts.create(account, {"external_account": token.id})
    assert card.object == "card" and card.account == account
    assert card.id == token.card.id and card.last4 == "5556"
    again = c.v1.accounts.external_accounts.retrieve(account, card.id)
    assert again.object == "card" and again.last4 == "5556"
    listed = c.v1.accounts.external_accounts.list(account, {"object": "card"})
    assert [a.id for a in listed.data] == [card.id]
    with pytest.raises(stripe.InvalidRequestError) as info:  # a token is used once
        c.v1.accounts.external_accounts.create(account, {"external_account": token.id})
    assert info.value.code == "token_already_used"
    assert info.value.param == "external_account"
    assert g.upstream_attempts == []


def test_a_bank_token_or_bank_hash_makes_a_bank_account_and_a_card_hash_a_card(connect):
    c, _, account = connect
    token = c.v1.tokens.create({"bank_account": {
        "country": "US", "currency": "usd", "routing_number": "110000000",
        "account_number": "000123456789"}})
    bank = c.v1.accounts.external_accounts.create(account, {"external_account": token.id})
    assert bank.object == "bank_account" and bank.id == token.bank_account.id
    assert bank.last4 == "6789" and bank.account == account
    hashed = c.v1.accounts.external_accounts.create(account, {"external_account": {
        "object": "bank_account", "country": "US", "currency": "usd",
        "routing_number": "110000000", "account_number": "000111111116"}})
    assert hashed.object == "bank_account" and hashed.last4 == "1116"
    card = c.v1.accounts.external_accounts.create(account, {"external_account": {
        "object": "card", "number": "4242424242424242", "exp_month": 4, "exp_year": 2031,
        "currency": "usd"}})
    assert card.object == "card" and card.last4 == "4242" and card.exp_year == 2031
    assert {a.object for a in c.v1.accounts.external_accounts.list(account).data} == {
        "card", "bank_account"}
    with pytest.raises(stripe.CardError) as bad:
        c.v1.accounts.external_accounts.create(account, {"external_account": {
            "object": "card", "number": "4242424242424241", "exp_month": 4,
            "exp_year": 2031}})
    assert bad.value.code == "incorrect_number"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.accounts.external_accounts.create(account, {"external_account": "tok_nope"})
    assert info.value.http_status == 404 and info.value.param == "external_account"


def test_a_customer_source_from_a_card_token_is_the_customers_card(stripe_guard):
    c, _ = stripe_guard
    customer = c.v1.customers.create({"email": "jenny.rosen@example.com"})
    card = c.v1.customers.payment_sources.create(customer.id, {"source": "tok_mastercard"})
    assert card.object == "card" and card.customer == customer.id
    assert card.brand == "MasterCard" and card.last4 == "4444"
    listed = c.v1.customers.payment_sources.list(customer.id)
    assert [s.id for s in listed.data] == [card.id]


def test_a_quotes_line_items_are_kept_priced_and_listed_and_the_quote_adds_them_up(
        stripe_guard):
    c, g = stripe_guard
    customer = c.v1.customers.create({"email": "jenny.rosen@example.com"})
    product = c.v1.products.create({"name": "Gizmo"})
    price = c.v1.prices.create({"product": product.id, "unit_amount": 1500,
                                "currency": "usd"})
    quote = c.v1.quotes.create({"customer": customer.id, "line_items": [
        {"price": price.id, "quantity": 2},
        {"price_data": {"product": product.id, "unit_amount": 250, "currency": "usd"}}]})
    assert quote.amount_subtotal == quote.amount_total == 3250
    assert quote.computed.upfront.amount_total == 3250
    items = c.v1.quotes.line_items.list(quote.id)
    assert [(i.object, i.price.unit_amount, i.quantity, i.amount_total)
            for i in items.data] == [("item", 1500, 2, 3000), ("item", 250, 1, 250)]
    assert items.data[0].description == "Gizmo"
    upfront = c.v1.quotes.computed_upfront_line_items.list(quote.id)
    assert [i.id for i in upfront.data] == [i.id for i in items.data]
    assert c.v1.quotes.retrieve(quote.id).amount_total == 3250
    updated = c.v1.quotes.update(quote.id, {"line_items": [{"price": price.id}]})
    assert updated.amount_total == 1500
    assert [i.quantity for i in c.v1.quotes.line_items.list(quote.id).data] == [1]
    with pytest.raises(stripe.InvalidRequestError) as info:  # and nothing is kept
        c.v1.quotes.create({"customer": customer.id,
                            "line_items": [{"price": "price_nope"}]})
    assert info.value.http_status == 404 and info.value.param == "line_items[0][price]"
    assert len(c.v1.quotes.list().data) == 1
    assert g.upstream_attempts == []
