"""The rest: unknown URLs and card tokens."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe import cards
from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, no_such, unrecognized


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
    c = call.params.sub("card")
    number = c.str("number", required=True) or ""
    card = cards.by_number(number)
    if card is None:
        raise StripeError(402, "Your card number is incorrect.", type="card_error",
                          code="incorrect_number", param="number")
    return call.save(_token(call, card, call.new_id("token")))


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
