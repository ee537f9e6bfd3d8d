"""Payment methods (cards): create, retrieve, update, attach, detach, list; Stripe's test
ids (``pm_card_visa`` ...) become a new PaymentMethod wherever they are used, as in test
mode. Also the legacy card sources made from ``tok_*`` tokens."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe import cards
from guard.providers.stripe.addresses import ADDRESS_KEYS, address
from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, invalid_param, no_such
from guard.providers.stripe.lists import listing
from guard.providers.stripe.params import Params
from guard.providers.stripe.resource import update

_EMPTY_BILLING = {"address": dict.fromkeys(ADDRESS_KEYS), "email": None, "name": None,
                  "phone": None, "tax_id": None}


def billing_details(p: Params, current: dict[str, Any] | None = None) -> dict[str, Any]:
    out = dict(current or _EMPTY_BILLING)
    if p.has("billing_details"):
        b = p.sub("billing_details")
        for key in ("email", "name", "phone"):
            if b.has(key):
                out[key] = b.str(key)
        if b.has("address"):
            out["address"] = address(b, "address") or dict.fromkeys(ADDRESS_KEYS)
    return out


def new_payment_method(call: Call, card: cards.Card, *, exp: tuple[int, int] | None = None,
                       billing: dict[str, Any] | None = None,
                       metadata: dict[str, str] | None = None) -> dict[str, Any]:
    pm = {
        "id": call.new_id("payment_method"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing or dict(_EMPTY_BILLING),
        "card": cards.pm_card(card, exp or cards.expiry(call.now)),
        "created": call.now,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata or {},
        "type": "card",
    }
    return call.save(pm)


def resolve(call: Call, pm_id: str, param: str = "payment_method") -> dict[str, Any]:
    """A stored PaymentMethod, or a new one for a test id (``pm_card_visa``, ``tok_visa``)."""
    card = cards.by_test_id(pm_id)
    if card is not None:
        return new_payment_method(call, card)
    return call.get("payment_method", pm_id, param=param)


def card_of(pm: dict[str, Any]) -> cards.Card | None:
    """The test card behind a payment method or card source (None: an ordinary card)."""
    details = pm.get("card") if pm.get("object") == "payment_method" else pm
    return cards.by_fingerprint((details or {}).get("fingerprint"))


def decline_error(call: Call, card: cards.Card, **extra: Any) -> StripeError:
    assert card.decline is not None
    d = card.decline
    return StripeError(402, d.message, type="card_error", code=d.code,
                       decline_code=d.decline_code,
                       request_log_url=f"https://dashboard.stripe.com/test/logs/"
                       f"{call.request_id}", **extra)


def attach_to(call: Call, pm_id: str, customer_id: str, param: str = "id") -> dict[str, Any]:
    call.get("customer", customer_id, param="customer")
    pm = resolve(call, pm_id, param)
    if pm["customer"] is not None and pm["customer"] != customer_id:
        raise StripeError(400, "The payment method you provided has already been attached to "
                          "a customer.", code="payment_method_unexpected_state")
    card = card_of(pm)
    if card is not None and card.decline is not None and card.decline.on_attach:
        raise decline_error(call, card, param="")
    pm["customer"] = customer_id
    call.save(pm)
    call.event("payment_method.attached", pm)
    return pm


def card_source(call: Call, source: str, customer_id: str | None) -> dict[str, Any]:
    """A card object from a ``tok_*`` test token (Charges API ``source``, customer sources)."""
    card = cards.by_test_id(source) if source.startswith("tok_") else None
    token = call.find("token", source) if card is None else None
    if token is not None:
        if token["used"]:
            raise StripeError(400, f"You cannot use a Stripe token more than once: {source}.",
                              code="token_already_used", param="source")
        token["used"] = True
        call.save(token)
        card = cards.of_card(token.get("card"))
    if card is None:
        existing = call.find("card", source)
        if existing is not None:
            return existing
        raise no_such("token", source, "source")
    obj = cards.legacy_card(card, call.new_id("card"), cards.expiry(call.now), customer_id)
    return call.save(obj) if customer_id else obj


@endpoint
def create_payment_method(call: Call) -> dict[str, Any]:
    p = call.params
    p.enum("type", ("card",), required=True)
    c = p.sub("card")
    card: cards.Card | None = None
    exp = None
    if c.has("token"):
        card = cards.by_test_id(c.str("token", required=True) or "")
        if card is None:
            raise no_such("token", c.str("token") or "", "card[token]")
    elif c.has("number"):
        card = cards.by_number(c.str("number", required=True) or "")
        if card is None:
            raise StripeError(402, "Your card number is incorrect.", type="card_error",
                              code="incorrect_number", param="number")
        exp = (c.int("exp_month", required=True) or 0, c.int("exp_year", required=True) or 0)
        if not 1 <= exp[0] <= 12:
            raise StripeError(402, "Your card's expiration month is invalid.",
                              type="card_error", code="invalid_expiry_month",
                              param="exp_month")
    else:
        raise invalid_param("card", "Missing required param: card[token] or card[number].",
                            "parameter_missing")
    return new_payment_method(call, card, exp=exp, billing=billing_details(p),
                              metadata=p.metadata())


@endpoint
def retrieve_payment_method(call: Call) -> dict[str, Any]:
    return resolve(call, call.capture("id"), "id")


def _payment_method_fields(call: Call, pm: dict[str, Any]) -> None:
    p = call.params
    pm["billing_details"] = billing_details(p, pm["billing_details"])
    pm["metadata"] = p.metadata(pm["metadata"])
    c = p.sub("card")
    for key in ("exp_month", "exp_year"):
        if c.has(key):
            pm["card"][key] = c.int(key)
    if p.has("allow_redisplay"):
        pm["allow_redisplay"] = p.enum("allow_redisplay", ("always", "limited", "unspecified"))


update_payment_method = update("payment_method", _payment_method_fields, emit="object")


@endpoint
def attach_payment_method(call: Call) -> dict[str, Any]:
    customer = call.params.str("customer", required=True) or ""
    return attach_to(call, call.capture("id"), customer)


@endpoint
def detach_payment_method(call: Call) -> dict[str, Any]:
    pm = call.get("payment_method", call.capture("id"))
    if pm["customer"] is None:
        raise StripeError(400, "The payment method you provided is not attached to a customer "
                          "so detachment is impossible.", code="payment_method_unexpected_state")
    customer = call.find("customer", pm["customer"])
    if customer and customer["invoice_settings"]["default_payment_method"] == pm["id"]:
        customer["invoice_settings"]["default_payment_method"] = None
        call.save(customer)
    pm["customer"] = None
    call.save(pm)
    call.event("payment_method.detached", pm)
    return pm


def _of_customer(call: Call, customer_id: str) -> dict[str, Any]:
    call.get("customer", customer_id, param="customer")
    items = [pm for pm in call.each("payment_method") if pm["customer"] == customer_id]
    return listing(call, "payment_method", items, filters={"type": "type"},
                   url=f"/v1/customers/{customer_id}/payment_methods")


@endpoint
def list_payment_methods(call: Call) -> dict[str, Any]:
    customer = call.params.str("customer")
    if customer is not None:
        return _of_customer(call, customer)
    return listing(call, "payment_method", filters={"type": "type"})


@endpoint
def list_customer_payment_methods(call: Call) -> dict[str, Any]:
    return _of_customer(call, call.capture("id"))
