"""What a create in a polymorphic collection makes, as Stripe decides it: an account's
external account (``external_account=``) and a customer's source (``source=``) are a
``card`` for a card token or a card hash and a ``bank_account`` for a bank account token
or hash, made from the token's object (its id, brand, last4), which is then used.

The engine (guard/openapi/api.py, ``Maker``) stores the object among that type's objects
and sets its parent (``account`` or ``customer``).
"""

from __future__ import annotations

from typing import Any

from guard.providers.stripe import cards
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, invalid_param, no_such
from guard.providers.stripe.misc import bank_account
from guard.providers.stripe.params import Params

# create path -> the parameters that can name what to add, in Stripe's order: a token (or
# source) id, or a hash (``external_account[object]=card``, ``card[number]=...``)
PARAMS = {"/v1/accounts/{account}/external_accounts": ("external_account", "bank_account"),
          "/v1/customers/{customer}/sources": ("source", "card", "bank_account")}
_CARD_FIELDS = ("name", "address_line1", "address_line2", "address_city", "address_state",
                "address_zip", "address_country", "currency")


def made(call: Call, params: tuple[str, ...], body: Any
         ) -> tuple[str, dict[str, Any] | None] | None:
    """(object type, object) for the create's parameters; None when none names a kind
    (the engine's own choice then). ``body`` has passed the description's checks; the
    values are read as sent (strings), as the hand-written handlers read them."""
    for param in params:
        if not isinstance(body, dict) or param not in body:
            continue
        value = call.params.raw(param)
        if isinstance(value, str) and value:
            return _from_token(call, param, value)
        if isinstance(value, dict):
            sub = call.params.sub(param)
            kind = param if param in ("card", "bank_account") else \
                sub.enum("object", ("bank_account", "card"), required=True)
            if kind == "card":
                return "card", _card(call, sub)
            return "bank_account", bank_account(call, sub)
    return None


def _from_token(call: Call, param: str, value: str) -> tuple[str, dict[str, Any] | None] | None:
    if value.startswith("src_"):
        source = call.world.get("stripe.sources", value)
        if source is None:
            raise no_such("source", value, param)
        return "source", dict(source)
    token = call.find("token", value)
    if token is None:
        card = cards.by_test_id(value)
        if card is None:
            raise no_such("token", value, param)
        return "card", cards.legacy_card(card, call.new_id("card"), cards.expiry(call.now))
    if token.get("used"):
        raise StripeError(400, f"You cannot use a Stripe token more than once: {value}.",
                          code="token_already_used", param=param)
    kind = token.get("type")
    inner = token.get(kind) if kind in ("card", "bank_account") else None
    if not isinstance(inner, dict):
        raise invalid_param(param, f"The token {value} is not a card or bank account "
                            "token.")
    token["used"] = True
    call.save(token)
    obj = dict(inner)
    obj.pop("networks", None)  # a token's card only
    return str(kind), obj


def _card(call: Call, sub: Params) -> dict[str, Any]:
    card = cards.by_number(sub.str("number", required=True) or "")
    if card is None:
        raise StripeError(402, "Your card number is incorrect.", type="card_error",
                          code="incorrect_number", param=sub.name("number"))
    month = sub.int("exp_month", required=True) or 0
    year = sub.int("exp_year", required=True) or 0
    if not 1 <= month <= 12:
        raise StripeError(402, "Your card's expiration month is invalid.", type="card_error",
                          code="invalid_expiry_month", param=sub.name("exp_month"))
    obj = cards.legacy_card(card, call.new_id("card"), (month, year))
    for key in _CARD_FIELDS:
        if sub.has(key):
            obj[key] = sub.str(key)
    return obj


__all__ = ["PARAMS", "made"]
