"""Charges: the attempt to move money that a confirmed PaymentIntent (or the legacy
``Charge.create`` with a ``source``) makes. A test card's outcome decides success or a
decline; a decline is a ``failed`` charge plus Stripe's 402 ``card_error``."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe import cards
from guard.providers.stripe.addresses import ADDRESS_KEYS
from guard.providers.stripe.api import endpoint
from guard.providers.stripe.balance import add_transaction
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, missing_param, unexpected_state
from guard.providers.stripe.payment_methods import card_of, card_source, decline_error
from guard.providers.stripe.resource import list_all, retrieve, update

# Stripe's minimum charge amounts for common currencies (smallest unit).
MINIMUMS = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50,
            "sek": 300, "nok": 300, "dkk": 250, "mxn": 1000, "sgd": 50, "nzd": 50}


def check_amount(amount: int, currency: str, param: str = "amount") -> None:
    low = MINIMUMS.get(currency, 1)
    if amount < low:
        shown = f"{low / 100:.2f}" if currency != "jpy" else str(low)
        raise StripeError(400, f"Amount must be at least {shown} {currency}",
                          code="amount_too_small", param=param)
    if amount > 99_999_999:
        raise StripeError(400, "Amount must be no more than 999,999.99", code="amount_too_large",
                          param=param)


def _card_details(call: Call, method: dict[str, Any], amount: int, ok: bool) -> dict[str, Any]:
    c = method["card"] if method["object"] == "payment_method" else method
    brand = c["brand"] if method["object"] == "payment_method" else \
        next((k for k, v in cards._LEGACY_BRAND.items() if v == c["brand"]), c["brand"].lower())
    return {
        "amount_authorized": amount if ok else None,
        "authorization_code": call.world.ids.digits(6) if ok else None,
        "brand": brand,
        "checks": {"address_line1_check": None, "address_postal_code_check": None,
                   "cvc_check": "pass"},
        "country": c["country"],
        "exp_month": c["exp_month"],
        "exp_year": c["exp_year"],
        "extended_authorization": {"status": "disabled"},
        "fingerprint": c["fingerprint"],
        "funding": c["funding"],
        "incremental_authorization": {"status": "unavailable"},
        "installments": None,
        "last4": c["last4"],
        "mandate": None,
        "multicapture": {"status": "unavailable"},
        "network": brand,
        "network_token": {"used": False},
        "network_transaction_id": call.world.ids.digits(15) if ok else None,
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": "unregulated",
        "three_d_secure": None,
        "transaction_link_id": None,
        "wallet": None,
    }


def _outcome(card: cards.Card | None, call: Call) -> dict[str, Any]:
    base = {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
            "risk_level": "normal", "risk_score": call.world.ids.number(0, 60)}
    d = card.decline if card else None
    if d is None:
        return dict(base, network_status="approved_by_network", reason=None,
                    seller_message="Payment complete.", type="authorized")
    if d.decline_code == "fraudulent":
        return dict(base, network_status="not_sent_to_network", reason="highest_risk_level",
                    risk_level="highest", risk_score=95, type="blocked",
                    seller_message="Stripe blocked this payment as too risky.")
    return dict(base, network_status="declined_by_network", reason=d.decline_code,
                seller_message="The bank did not return any further details with this "
                "decline.", type="issuer_declined")


def make_charge(call: Call, *, amount: int, currency: str, method: dict[str, Any],
                customer: str | None, capture: bool, payment_intent: str | None = None,
                description: str | None = None, metadata: dict[str, str] | None = None,
                receipt_email: str | None = None, statement_descriptor: str | None = None,
                shipping: dict[str, Any] | None = None) -> dict[str, Any]:
    """Charge ``method`` (a PaymentMethod or a card source). Returns the saved charge,
    ``succeeded`` or ``failed``; the caller answers a failure with :func:`decline_error`."""
    card = card_of(method)
    ok = card is None or card.decline is None
    legacy = method["object"] == "card"
    ch_id = call.new_id("charge")
    billing = method.get("billing_details") or {
        "address": dict.fromkeys(ADDRESS_KEYS), "email": None, "name": method.get("name"),
        "phone": None, "tax_id": None}
    charge: dict[str, Any] = {
        "id": ch_id, "object": "charge",
        "amount": amount,
        "amount_captured": amount if ok and capture else 0,
        "amount_refunded": 0,
        "application": None, "application_fee": None, "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": billing,
        "calculated_statement_descriptor": statement_descriptor or "GUARD SANDBOX",
        "captured": ok and capture,
        "created": call.now,
        "currency": currency,
        "customer": customer,
        "description": description,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if ok else card.decline.code,  # type: ignore[union-attr]
        "failure_message": None if ok else card.decline.message,  # type: ignore[union-attr]
        "fraud_details": {},
        "livemode": False,
        "metadata": metadata or {},
        "on_behalf_of": None,
        "outcome": _outcome(card, call),
        "paid": ok,
        "payment_intent": payment_intent,
        "payment_method": method["id"],
        "payment_method_details": {"card": _card_details(call, method, amount, ok),
                                   "type": "card"},
        "receipt_email": receipt_email,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{call.world.ids.base62(60)}",
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                    "url": f"/v1/charges/{ch_id}/refunds"},
        "review": None,
        "shipping": shipping,
        "source": method if legacy else None,
        "source_transfer": None,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if ok else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }
    if ok and capture:
        charge["balance_transaction"] = _book(call, charge, card)
    call.save(charge)
    call.event("charge.succeeded" if ok else "charge.failed", charge)
    return charge


def _book(call: Call, charge: dict[str, Any], card: cards.Card | None) -> str:
    txn = add_transaction(call, amount=charge["amount_captured"], currency=charge["currency"],
                          source=charge["id"], type="charge", description=charge["description"],
                          immediate=card is not None and card.name == "bypassPending")
    return str(txn["id"])


def capture_charge_amount(call: Call, charge: dict[str, Any], amount: int) -> dict[str, Any]:
    """Capture an authorized charge (in full or in part; the rest is released)."""
    charge["captured"] = True
    charge["amount_captured"] = amount
    charge["amount_refunded"] = charge["amount"] - amount
    charge["balance_transaction"] = _book(call, charge, card_of(charge["payment_method_details"]
                                                                ["card"]))
    call.save(charge)
    call.event("charge.captured", charge)
    return charge


@endpoint
def create_charge(call: Call) -> Any:
    p = call.params
    amount = p.int("amount", required=True) or 0
    currency = (p.str("currency", required=True) or "").lower()
    check_amount(amount, currency)
    customer_id = p.str("customer")
    customer = call.get("customer", customer_id, param="customer") if customer_id else None
    source_id = p.str("source")
    if source_id is not None:
        method = card_source(call, source_id, None)
    elif customer is not None:
        if not customer["default_source"]:
            raise StripeError(400, "Cannot charge a customer that has no active card",
                              code="missing", param="card")
        method = call.get("card", customer["default_source"], param="source")
    else:
        raise missing_param("source")
    charge = make_charge(
        call, amount=amount, currency=currency, method=method, customer=customer_id,
        capture=p.bool("capture", default=True) is not False,
        description=p.str("description"), metadata=p.metadata(),
        receipt_email=p.str("receipt_email"),
        statement_descriptor=p.str("statement_descriptor"))
    if charge["status"] == "failed":
        card = card_of(method)
        assert card is not None
        return call.respond(402, decline_error(call, card, charge=charge["id"]).body())
    return charge


retrieve_charge = retrieve("charge")


def _charge_fields(call: Call, ch: dict[str, Any]) -> None:
    p = call.params
    for key in ("description", "receipt_email"):
        if p.has(key):
            ch[key] = p.str(key)
    ch["metadata"] = p.metadata(ch["metadata"])


update_charge = update("charge", _charge_fields)


@endpoint
def capture_charge(call: Call) -> dict[str, Any]:
    ch = call.get("charge", call.capture("id"))
    if ch["captured"] or ch["status"] != "succeeded":
        raise unexpected_state("charge_already_captured",
                               f"Charge {ch['id']} has already been captured.")
    amount = call.params.int("amount", default=ch["amount"]) or ch["amount"]
    if amount > ch["amount"]:
        raise StripeError(400, "You cannot capture more than the amount authorized.",
                          code="amount_too_large", param="amount")
    if ch["payment_intent"]:
        raise unexpected_state("charge_not_capturable", "This charge belongs to a "
                               "PaymentIntent; capture the PaymentIntent instead.")
    return capture_charge_amount(call, ch, amount)


list_charges = list_all("charge", filters={"customer": "customer",
                                              "payment_intent": "payment_intent"})