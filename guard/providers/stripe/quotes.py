"""A quote's line items, as Stripe keeps them: each ``line_items[i]`` (``price`` or
``price_data``, ``quantity``, default 1) of a create or update becomes an ``item`` priced
from its price, kept where the engine lists a quote's line items and its computed upfront
line items (``stripe.items@<quote>``), and the quote's ``amount_subtotal``,
``amount_total`` and ``computed.upfront`` amounts are their sum. An update that sends
``line_items`` replaces them. Discounts and taxes are not computed (they stay 0)."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import invalid_param
from guard.providers.stripe.products import price_from

OPERATIONS = frozenset({("POST", "/v1/quotes"), ("POST", "/v1/quotes/{quote}")})


def items_of(quote_id: str) -> str:
    return f"stripe.items@{quote_id}"


def price_lines(call: Call, quote: dict[str, Any]) -> None:
    """Keep the request's line items of ``quote`` and total them (no-op without any)."""
    if not call.params.has("line_items") or not isinstance(quote.get("id"), str):
        return
    lines: list[dict[str, Any]] = []
    for entry in call.params.items("line_items"):
        price = price_from(call, entry)
        quantity = entry.int("quantity", minimum=0)
        quantity = 1 if quantity is None else quantity
        amount = (price.get("unit_amount") or 0) * quantity
        product = price.get("product")
        found = call.find("product", product) if isinstance(product, str) else None
        lines.append({
            "id": "li_" + call.world.ids.base62(24), "object": "item",
            "amount_discount": 0, "amount_subtotal": amount, "amount_tax": 0,
            "amount_total": amount, "currency": price.get("currency"),
            "description": (found or {}).get("name") or product, "discounts": [],
            "price": price, "quantity": quantity, "taxes": []})
    currencies = {line["currency"] for line in lines}
    if len(currencies) > 1:
        raise invalid_param("line_items", "All line items must use the same currency.")
    where = items_of(quote["id"])
    for old in call.world.list(where):
        call.world.delete(where, str(old["id"]))
    for line in reversed(lines):  # the list answers the last kept first
        call.world.put(where, line)
    total = sum(line["amount_total"] for line in lines)
    quote.update(amount_subtotal=total, amount_total=total)
    if currencies:
        quote["currency"] = currencies.pop()
    upfront = (quote.get("computed") or {}).get("upfront")
    if isinstance(upfront, dict):
        upfront.update(amount_subtotal=total, amount_total=total)
    call.world.put("stripe.quotes", quote)


__all__ = ["OPERATIONS", "items_of", "price_lines"]
