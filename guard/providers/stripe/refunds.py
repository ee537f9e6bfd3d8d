"""Refunds, full or partial, of a charge or a PaymentIntent's charge. The charge's
``amount_refunded``, ``refunded`` and ``refunds`` follow."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.balance import add_transaction
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, unexpected_state
from guard.providers.stripe.lists import listing
from guard.providers.stripe.resource import list_all, retrieve, update


def refund_charge(call: Call, charge: dict[str, Any], amount: int | None) -> dict[str, Any]:
    left = charge["amount_captured"] - charge["amount_refunded"] if charge["captured"] \
        else charge["amount"] - charge["amount_refunded"]
    if charge["status"] != "succeeded":
        raise StripeError(400, f"Charge {charge['id']} has no successful payment to refund.",
                          code="charge_not_refundable", param="charge")
    if left <= 0:
        raise unexpected_state("charge_already_refunded",
                               f"Charge {charge['id']} has already been refunded.")
    amount = left if amount is None else amount
    if amount <= 0:
        raise StripeError(400, "Refund amount must be positive.", code="parameter_invalid_integer",
                          param="amount")
    if amount > left:
        raise StripeError(400, f"Refund amount ({_money(amount, charge['currency'])}) is greater "
                          f"than unrefunded amount on charge ({_money(left, charge['currency'])})",
                          code="amount_too_large", param="amount")
    p = call.params
    refund_id = call.new_id("refund")
    txn = None
    if charge["captured"]:
        txn = add_transaction(call, amount=-amount, currency=charge["currency"],
                              source=refund_id, type="refund", description="REFUND FOR CHARGE")
    refund = {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": txn["id"] if txn else None,
        "charge": charge["id"],
        "created": call.now,
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {"card": {"reference_status": "pending",
                                         "reference_type": "acquirer_reference_number",
                                         "type": "refund" if charge["captured"] else "reversal"},
                                "type": "card"},
        "metadata": p.metadata(),
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": p.enum("reason", ("duplicate", "fraudulent", "requested_by_customer")),
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    call.save(refund)
    before = dict(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    refunds = charge["refunds"]
    refunds["data"].insert(0, refund)
    refunds["total_count"] = len(refunds["data"])
    call.save(charge)
    call.event("refund.created", refund)
    call.event("charge.refunded", charge, {"amount_refunded": before["amount_refunded"],
                                           "refunded": before["refunded"]})
    return refund


def _money(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency, "")
    return f"{symbol}{amount / 100:.2f}" if symbol else f"{amount / 100:.2f} {currency}"


def _charge_for(call: Call) -> dict[str, Any]:
    p = call.params
    charge_id, pi_id = p.str("charge"), p.str("payment_intent")
    if charge_id is None and pi_id is None:
        raise StripeError(400, "One of the following params should be provided for this "
                          "request: payment_intent or charge.", code="parameter_missing")
    if charge_id is not None:
        return call.get("charge", charge_id, param="charge")
    pi = call.get("payment_intent", pi_id, param="payment_intent")
    if pi["status"] != "succeeded" or not pi["latest_charge"]:
        raise StripeError(400, f"This PaymentIntent ({pi['id']}) does not have a successful "
                          "charge to refund.", code="charge_not_refundable",
                          param="payment_intent")
    return call.get("charge", pi["latest_charge"])


@endpoint
def create_refund(call: Call) -> dict[str, Any]:
    return refund_charge(call, _charge_for(call), call.params.int("amount", minimum=1))


@endpoint
def create_charge_refund(call: Call) -> dict[str, Any]:
    """The legacy ``POST /v1/charges/{id}/refunds``."""
    charge = call.get("charge", call.capture("id"))
    return refund_charge(call, charge, call.params.int("amount", minimum=1))


retrieve_refund = retrieve("refund")


def _refund_fields(call: Call, refund: dict[str, Any]) -> None:
    refund["metadata"] = call.params.metadata(refund["metadata"])


update_refund = update("refund", _refund_fields, emit="object")


list_refunds = list_all("refund", filters={"charge": "charge",
                                              "payment_intent": "payment_intent"})


@endpoint
def list_charge_refunds(call: Call) -> dict[str, Any]:
    charge = call.get("charge", call.capture("id"))
    items = [r for r in call.each("refund") if r["charge"] == charge["id"]]
    return listing(call, "refund", items, url=f"/v1/charges/{charge['id']}/refunds")
