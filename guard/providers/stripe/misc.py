"""The rest: unknown URLs and tokens (card, bank account, PII, account, person)."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe import cards
from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, no_such, unrecognized
from guard.providers.stripe.params import Params


@endpoint
def unrecognized_url(call: Call) -> Any:
    raise unrecognized(call.request.method, call.request.path)


def _token(call: Call, card: cards.Card, id: str) -> dict[str, Any]:
    exp = cards.expiry(call.now)
    return {"id": id, "object": "token", "card": dict(cards.legacy_card(
        card, call.new_id("card"), exp), networks={"preferred": None}),
        "client_ip": None, "created": call.now, "livemode": False, "type": "card",
        "used": False}


@endpoint
def create_token(call: Call) -> dict[str, Any]:
    p = call.params
    for kind in ("bank_account", "pii", "account", "person", "cvc_update"):
        if p.has(kind):
            return call.save(_other_token(call, kind))
    c = p.sub("card")
    number = c.str("number", required=True) or ""
    card = cards.by_number(number)
    if card is None:
        raise StripeError(402, "Your card number is incorrect.", type="card_error",
                          code="incorrect_number", param="number")
    return call.save(_token(call, card, call.new_id("token")))


def _other_token(call: Call, kind: str) -> dict[str, Any]:
    """A token that is not a card's. Only a bank account token carries an object; the
    others stand for data Stripe keeps (an ID number, account or person details)."""
    token: dict[str, Any] = {"id": call.new_id("token"), "object": "token", "client_ip": None,
                             "created": call.now, "livemode": False, "type": kind,
                             "used": False}
    if kind == "bank_account":
        token["bank_account"] = bank_account(call, call.params.sub("bank_account"))
    return token


def bank_account(call: Call, b: Params) -> dict[str, Any]:
    """A ``bank_account`` object from its details (a token's, an external account's)."""
    number = b.str("account_number", required=True) or ""
    if len(number) < 4 or not (number.isascii() and number.isdigit()):
        raise StripeError(400, "You must use a test bank account number in test mode. "
                          "Try 000123456789 or see more options at "
                          "https://stripe.com/docs/connect/testing#account-numbers.",
                          param=b.name("account_number"))
    return {
        "id": f"ba_{call.world.ids.base62(24)}", "object": "bank_account",
        "account_holder_name": b.str("account_holder_name"),
        "account_holder_type": b.str("account_holder_type"), "account_type": None,
        "bank_name": "STRIPE TEST BANK", "country": (b.str("country") or "US").upper(),
        "currency": (b.str("currency") or "usd").lower(),
        "fingerprint": call.world.ids.base62(16), "last4": number[-4:],
        "routing_number": b.str("routing_number"), "status": "new"}


@endpoint
def retrieve_token(call: Call) -> dict[str, Any]:
    token_id = call.capture("id")
    stored = call.find("token", token_id)
    if stored is not None:
        return stored
    card = cards.by_test_id(token_id)
    if card is None or not token_id.startswith("tok_"):
        raise no_such("token", token_id)
    return _token(call, card, token_id)
