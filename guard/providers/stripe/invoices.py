"""Invoices: drafted from subscription items or pending invoice items, finalized
(``open``, numbered), paid through a PaymentIntent (``paid``), voided or marked
uncollectible. ``draft -> open -> paid | void | uncollectible``. The endpoints; the
invoice itself and its lifecycle are in :mod:`.invoicing`."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, unexpected_state
from guard.providers.stripe.invoiceitems import add_to_invoice
from guard.providers.stripe.invoicing import (
    finalize,
    mark_paid,
    new_invoice,
    pay,
    payment_method_for,
)
from guard.providers.stripe.lists import listing
from guard.providers.stripe.resource import delete, list_all, retrieve, update


@endpoint
def create_invoice(call: Call) -> dict[str, Any]:
    p = call.params
    customer = call.get("customer", p.str("customer", required=True), param="customer")
    method = p.enum("collection_method", ("charge_automatically", "send_invoice"),
                    default="charge_automatically")
    days = p.int("days_until_due")
    if method == "send_invoice" and days is None and not p.has("due_date"):
        raise StripeError(400, "Invoices with `collection_method=send_invoice` must have a "
                          "`due_date` or `days_until_due`.", param="days_until_due")
    behavior = p.enum("pending_invoice_items_behavior", ("exclude", "include"),
                      default="exclude")
    pending = [ii for ii in call.each("invoiceitem")
               if ii["customer"] == customer["id"] and ii["invoice"] is None]
    currency = (p.str("currency") or (pending[0]["currency"] if pending else None)
                or customer["currency"] or "usd")
    inv = new_invoice(call, customer, currency=currency, billing_reason="manual",
                      collection_method=method or "charge_automatically", days_until_due=days,
                      default_payment_method=p.str("default_payment_method"),
                      description=p.str("description"), metadata=p.metadata(),
                      auto_advance=bool(p.bool("auto_advance", default=False)))
    if behavior == "include":
        for ii in pending:
            add_to_invoice(call, ii, inv)
    return call.get("invoice", inv["id"])


retrieve_invoice = retrieve("invoice")


def _invoice_fields(call: Call, inv: dict[str, Any]) -> None:
    p = call.params
    if inv["status"] != "draft" and set(p.keys()) - {"metadata", "expand"}:
        raise unexpected_state("invoice_not_editable", "You can only modify draft invoices.")
    for key in ("description", "footer", "default_payment_method"):
        if p.has(key):
            inv[key] = p.str(key)
    if p.has("auto_advance"):
        inv["auto_advance"] = p.bool("auto_advance")
    inv["metadata"] = p.metadata(inv["metadata"])


update_invoice = update("invoice", _invoice_fields, emit="object")


def _is_draft(call: Call, inv: dict[str, Any]) -> None:
    if inv["status"] != "draft":
        raise unexpected_state("invoice_not_editable", "You can only modify draft invoices.")


delete_invoice = delete("invoice", first=_is_draft)


@endpoint
def finalize_invoice(call: Call) -> dict[str, Any]:
    return finalize(call, call.get("invoice", call.capture("id")))


@endpoint
def pay_invoice(call: Call) -> Any:
    inv = call.get("invoice", call.capture("id"))
    if inv["status"] == "draft":
        finalize(call, inv)
    if inv["status"] == "paid":
        raise unexpected_state("invoice_already_paid", "Invoice is already paid")
    if inv["status"] != "open":
        raise unexpected_state("invoice_not_open", f"You cannot pay this invoice because it "
                               f"has a status of {inv['status']}.")
    if call.params.bool("paid_out_of_band"):
        mark_paid(call, inv, 0)
        return inv
    pm_id = payment_method_for(call, inv, call.params.str("payment_method"))
    if pm_id is None:
        raise StripeError(400, "This customer has no attached payment source or default "
                          "payment method. Please consider adding a default payment method.")
    _, declined = pay(call, inv, pm_id)
    return declined if declined is not None else call.get("invoice", inv["id"])


@endpoint
def void_invoice(call: Call) -> dict[str, Any]:
    inv = call.get("invoice", call.capture("id"))
    if inv["status"] not in ("open", "uncollectible"):
        raise unexpected_state("invoice_not_open", "You can only void open invoices.")
    inv.update(status="void", status_transitions=dict(inv["status_transitions"],
                                                      voided_at=call.now))
    call.save(inv)
    call.event("invoice.voided", inv)
    return inv


@endpoint
def mark_uncollectible_invoice(call: Call) -> dict[str, Any]:
    inv = call.get("invoice", call.capture("id"))
    if inv["status"] != "open":
        raise unexpected_state("invoice_not_open", "You can only mark open invoices "
                               "uncollectible.")
    inv.update(status="uncollectible", status_transitions=dict(
        inv["status_transitions"], marked_uncollectible_at=call.now))
    call.save(inv)
    call.event("invoice.marked_uncollectible", inv)
    return inv


@endpoint
def send_invoice(call: Call) -> dict[str, Any]:
    inv = call.get("invoice", call.capture("id"))
    if inv["status"] == "draft":
        finalize(call, inv)
    call.event("invoice.sent", inv)
    return inv


def _of_subscription(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sub = call.params.str("subscription")
    if sub:
        items = [i for i in items if i["parent"] and
                 i["parent"]["subscription_details"]["subscription"] == sub]
    return items


list_invoices = list_all("invoice", select=_of_subscription, filters={
    "customer": "customer", "status": "status", "collection_method": "collection_method"})


@endpoint
def list_invoice_lines(call: Call) -> dict[str, Any]:
    inv = call.get("invoice", call.capture("id"))
    data = list(reversed(inv["lines"]["data"]))  # listing shows newest first; lines keep order
    return listing(call, "invoice", data, url=f"/v1/invoices/{inv['id']}/lines")
