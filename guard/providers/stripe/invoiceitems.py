"""Invoice items: one-off charges waiting for the customer's next invoice (or added to a
draft invoice directly)."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, missing_param, unexpected_state
from guard.providers.stripe.invoicing import line
from guard.providers.stripe.products import price_from
from guard.providers.stripe.resource import delete, list_all, retrieve, update


def add_to_invoice(call: Call, ii: dict[str, Any], inv: dict[str, Any]) -> None:
    if inv["status"] != "draft":
        raise unexpected_state("invoice_not_editable", "You can only add invoice items to "
                               "draft invoices.", param="invoice")
    ii["invoice"] = inv["id"]
    call.save(ii)
    price = {"id": ii["pricing"]["price_details"]["price"],
             "product": ii["pricing"]["price_details"]["product"],
             "unit_amount_decimal": ii["pricing"]["unit_amount_decimal"]}
    line(call, inv, amount=ii["amount"], price=price, quantity=ii["quantity"],
         description=ii["description"] or "", invoice_item=ii["id"],
         period=(ii["period"]["start"], ii["period"]["end"]))


@endpoint
def create_invoiceitem(call: Call) -> dict[str, Any]:
    p = call.params
    customer = call.get("customer", p.str("customer", required=True), param="customer")
    quantity = p.int("quantity", default=1, minimum=1) or 1
    price = None
    pricing = p.sub("pricing")  # newer API versions: pricing[price] instead of price
    if pricing.has("price"):
        price = call.get("price", pricing.str("price", required=True),
                         param="pricing[price]")
        amount = (price["unit_amount"] or 0) * quantity
        currency = price["currency"]
    elif p.has("price") or p.has("price_data"):
        price = price_from(call, p)
        amount = (price["unit_amount"] or 0) * quantity
        currency = price["currency"]
    else:
        amount_given = p.int("amount")
        if amount_given is None:
            raise missing_param("amount")
        amount = amount_given
        currency = (p.str("currency") or customer["currency"] or "").lower()
        if not currency:
            raise missing_param("currency")
    if customer["currency"] and currency != customer["currency"]:
        raise StripeError(400, f"The currency of this invoice item ({currency}) does not match "
                          f"the customer's currency ({customer['currency']}).", param="currency")
    period = p.sub("period")
    ii = {
        "id": call.new_id("invoiceitem"), "object": "invoiceitem", "amount": amount,
        "currency": currency, "customer": customer["id"], "customer_account": None,
        "date": call.now, "description": p.str("description"), "discountable": True,
        "discounts": [], "invoice": None, "livemode": False, "metadata": p.metadata(),
        "net_amount": amount, "parent": None,
        "period": {"end": period.int("end", default=call.now),
                   "start": period.int("start", default=call.now)},
        "pricing": {"price_details": {"price": price["id"] if price else None,
                                      "product": price["product"] if price else None},
                    "type": "price_details",
                    "unit_amount_decimal": price["unit_amount_decimal"] if price
                    else str(amount // quantity)},
        "proration": False, "quantity": quantity, "quantity_decimal": str(quantity),
        "tax_rates": [], "test_clock": None,
    }
    call.save(ii)
    call.event("invoiceitem.created", ii)
    invoice_id = p.str("invoice")
    if invoice_id is not None:
        add_to_invoice(call, ii, call.get("invoice", invoice_id, param="invoice"))
    return call.get("invoiceitem", ii["id"])


retrieve_invoiceitem = retrieve("invoiceitem")


def _invoiceitem_fields(call: Call, ii: dict[str, Any]) -> None:
    p = call.params
    if p.has("description"):
        ii["description"] = p.str("description")
    ii["metadata"] = p.metadata(ii["metadata"])


update_invoiceitem = update("invoiceitem", _invoiceitem_fields, emit="none")


def _not_invoiced(call: Call, ii: dict[str, Any]) -> None:
    if ii["invoice"] is not None:
        raise unexpected_state("invoice_not_editable", "This invoice item is already on an "
                               "invoice and cannot be deleted.")


delete_invoiceitem = delete("invoiceitem", first=_not_invoiced)


def _pending(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pending = call.params.bool("pending")
    if pending is not None:
        items = [i for i in items if (i["invoice"] is None) == pending]
    return items


list_invoiceitems = list_all("invoiceitem", select=_pending,
                             filters={"customer": "customer", "invoice": "invoice"})