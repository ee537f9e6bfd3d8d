"""The invoice object and its lifecycle, shared by the invoice endpoints and subscriptions:
draft it, add lines (totals follow), finalize (number it; a zero invoice is paid at
once), pay through a PaymentIntent."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import unexpected_state
from guard.providers.stripe.payment_intents import confirm, new_payment_intent
from guard.request import Response

ACCOUNT_NAME = "Guard Sandbox"


def new_invoice(call: Call, customer: dict[str, Any], *, currency: str, billing_reason: str,
                collection_method: str = "charge_automatically",
                subscription: dict[str, Any] | None = None, period: tuple[int, int] | None = None,
                default_payment_method: str | None = None, days_until_due: int | None = None,
                description: str | None = None, metadata: dict[str, str] | None = None,
                auto_advance: bool = True) -> dict[str, Any]:
    in_id = call.new_id("invoice")
    start, end = period or (call.now, call.now)
    inv: dict[str, Any] = {
        "id": in_id, "object": "invoice", "account_country": "US",
        "account_name": ACCOUNT_NAME, "account_tax_ids": None, "amount_due": 0,
        "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": 0, "amount_shipping": 0,
        "application": None, "attempt_count": 0, "attempted": False,
        "auto_advance": auto_advance,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None,
                          "provider": None, "status": None},
        "automatically_finalizes_at": None, "billing_reason": billing_reason,
        "collection_method": collection_method, "created": call.now, "currency": currency,
        "custom_fields": None, "customer": customer["id"], "customer_account": None,
        "customer_address": customer["address"], "customer_email": customer["email"],
        "customer_name": customer["name"], "customer_phone": customer["phone"],
        "customer_shipping": customer["shipping"],
        "customer_tax_exempt": customer["tax_exempt"], "customer_tax_ids": [],
        "default_payment_method": default_payment_method, "default_source": None,
        "default_tax_rates": [], "description": description, "discounts": [],
        "due_date": call.now + days_until_due * 86400 if days_until_due is not None else None,
        "effective_at": None, "ending_balance": None, "footer": None, "from_invoice": None,
        "hosted_invoice_url": None, "invoice_pdf": None, "issuer": {"type": "self"},
        "last_finalization_error": None, "latest_revision": None,
        "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                  "url": f"/v1/invoices/{in_id}/lines"},
        "livemode": False, "metadata": metadata or {}, "next_payment_attempt": None,
        "number": None, "on_behalf_of": None,
        "parent": {"quote_details": None, "subscription_details": {
            "metadata": subscription["metadata"], "subscription": subscription["id"]},
            "type": "subscription_details"} if subscription else None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None,
                             "payment_method_types": None},
        "period_end": end, "period_start": start, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": None, "rendering": None,
        "shipping_cost": None, "shipping_details": None, "starting_balance": 0,
        "statement_descriptor": None, "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None,
                               "paid_at": None, "voided_at": None},
        "subscription": subscription["id"] if subscription else None,
        "subtotal": 0, "subtotal_excluding_tax": 0, "test_clock": None, "total": 0,
        "total_discount_amounts": [], "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [], "total_taxes": [], "webhooks_delivered_at": None,
    }
    call.save(inv)
    call.event("invoice.created", inv)
    return inv


def line(call: Call, inv: dict[str, Any], *, amount: int, price: dict[str, Any], quantity: int,
         description: str, period: tuple[int, int], subscription_item: str | None = None,
         invoice_item: str | None = None) -> dict[str, Any]:
    """Add a line to a draft invoice and recompute its totals."""
    sub = inv["parent"]["subscription_details"]["subscription"] if inv["parent"] else None
    parent = ({"invoice_item_details": None, "subscription_item_details": {
        "invoice_item": None, "proration": False, "proration_details": {"credited_items": None},
        "subscription": sub, "subscription_item": subscription_item},
        "type": "subscription_item_details"} if subscription_item else
        {"invoice_item_details": {"invoice_item": invoice_item, "proration": False,
                                  "proration_details": {"credited_items": None},
                                  "subscription": sub},
         "subscription_item_details": None, "type": "invoice_item_details"})
    item = {
        "id": "il_" + call.world.ids.base62(24), "object": "line_item", "amount": amount,
        "currency": inv["currency"], "description": description, "discount_amounts": [],
        "discountable": True, "discounts": [], "invoice": inv["id"], "livemode": False,
        "metadata": {}, "parent": parent, "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {"price_details": {"price": price["id"], "product": price["product"]},
                    "type": "price_details", "unit_amount_decimal": price["unit_amount_decimal"]},
        "quantity": quantity, "quantity_decimal": str(quantity), "subscription": sub,
        "subtotal": amount, "taxes": [],
    }
    lines = inv["lines"]
    lines["data"].append(item)
    lines["total_count"] = len(lines["data"])
    total = sum(li["amount"] for li in lines["data"])
    inv.update(subtotal=total, subtotal_excluding_tax=total, total=total,
               total_excluding_tax=total, amount_due=total, amount_remaining=total)
    call.save(inv)
    return item


def finalize(call: Call, inv: dict[str, Any]) -> dict[str, Any]:
    if inv["status"] != "draft":
        raise unexpected_state("invoice_not_editable", "This invoice is already finalized, "
                               "you can't re-finalize a non-draft invoice.")
    customer = call.get("customer", inv["customer"])
    inv["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    call.save(customer)
    token = call.world.ids.base62(40)
    inv.update(status="open", effective_at=call.now,
               hosted_invoice_url=f"https://invoice.stripe.com/i/acct_guard/test_{token}",
               invoice_pdf=f"https://pay.stripe.com/invoice/acct_guard/test_{token}/pdf",
               status_transitions=dict(inv["status_transitions"], finalized_at=call.now))
    call.save(inv)
    call.event("invoice.finalized", inv)
    if inv["amount_due"] == 0:
        mark_paid(call, inv, 0)
    return inv


def mark_paid(call: Call, inv: dict[str, Any], amount: int) -> None:
    inv.update(status="paid", amount_paid=amount, amount_remaining=0, ending_balance=0,
               next_payment_attempt=None,
               status_transitions=dict(inv["status_transitions"], paid_at=call.now))
    call.save(inv)
    call.event("invoice.paid", inv)
    call.event("invoice.payment_succeeded", inv)


def payment_method_for(call: Call, inv: dict[str, Any], given: str | None = None) -> str | None:
    if given:
        return given
    if inv["default_payment_method"]:
        return str(inv["default_payment_method"])
    sub_id = inv["parent"]["subscription_details"]["subscription"] if inv["parent"] else None
    sub = call.find("subscription", sub_id) if sub_id else None
    if sub and sub["default_payment_method"]:
        return str(sub["default_payment_method"])
    customer = call.get("customer", inv["customer"])
    found = customer["invoice_settings"]["default_payment_method"]
    return str(found) if found else None


def pay(call: Call, inv: dict[str, Any], pm_id: str | None) -> tuple[dict[str, Any], Any]:
    """Charge an open invoice. Returns (payment intent, decline Response or None)."""
    pi = new_payment_intent(call, amount=inv["amount_due"], currency=inv["currency"],
                            customer=inv["customer"],
                            description="Subscription creation"
                            if inv["billing_reason"] == "subscription_create"
                            else f"Payment for Invoice {inv['number']}")
    pi["payment_method"] = pm_id
    pi["status"] = "requires_confirmation" if pm_id else "requires_payment_method"
    call.save(pi)
    call.event("payment_intent.created", pi)
    if pm_id is None:
        return pi, None
    result = confirm(call, pi)
    inv.update(attempted=True, attempt_count=inv["attempt_count"] + 1)
    if isinstance(result, Response):
        inv["next_payment_attempt"] = call.now + 3 * 86400
        call.save(inv)
        call.event("invoice.payment_failed", inv)
        return call.get("payment_intent", pi["id"]), result
    mark_paid(call, inv, inv["amount_due"])
    return result, None
