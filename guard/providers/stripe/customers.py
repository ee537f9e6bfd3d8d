"""Customers: create, retrieve, update, delete (a ``deleted`` object), list and search."""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

from guard.providers.stripe.addresses import address, shipping
from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError
from guard.providers.stripe.payment_methods import attach_to, card_source
from guard.providers.stripe.resource import delete, list_all, retrieve, update
from guard.providers.stripe.subscriptions import end_subscription


def _apply(call: Call, c: dict[str, Any]) -> None:
    """Set the fields a create or update sends."""
    p = call.params
    for key in ("email", "name", "description", "phone"):
        if p.has(key):
            c[key] = p.str(key)
    if p.has("address"):
        c["address"] = address(p, "address")
    if p.has("shipping"):
        c["shipping"] = shipping(p)
    if p.has("balance"):
        c["balance"] = p.int("balance") or 0
    if p.has("preferred_locales"):
        c["preferred_locales"] = p.strings("preferred_locales") or []
    if p.has("tax_exempt"):
        c["tax_exempt"] = p.enum("tax_exempt", ("none", "exempt", "reverse")) or "none"
    if p.has("invoice_settings"):
        inv = p.sub("invoice_settings")
        if inv.has("default_payment_method"):
            pm_id = inv.str("default_payment_method")
            if pm_id is not None:
                pm = call.get("payment_method", pm_id,
                              param="invoice_settings[default_payment_method]")
                if pm["customer"] != c["id"]:
                    raise StripeError(400, f"The customer does not have a payment method with "
                                      f"the ID {pm_id}. The payment method must be attached "
                                      "to the customer.", code="resource_missing",
                                      param="invoice_settings[default_payment_method]")
            c["invoice_settings"]["default_payment_method"] = pm_id
        if inv.has("footer"):
            c["invoice_settings"]["footer"] = inv.str("footer")
    c["metadata"] = p.metadata(c["metadata"])


@endpoint
def create_customer(call: Call) -> dict[str, Any]:
    c: dict[str, Any] = {
        "id": call.new_id("customer"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": call.now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": call.world.ids.hex(8).upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                             "footer": None, "rendering_options": None},
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    pm_id = call.params.str("payment_method")
    if pm_id is not None:  # attached before invoice_settings may name it
        call.save(c)
        attach_to(call, pm_id, c["id"], param="payment_method")
    _apply(call, c)
    source = call.params.str("source")
    if source is not None:
        c["default_source"] = card_source(call, source, c["id"])["id"]
    call.save(c)
    call.event("customer.created", c)
    return c


retrieve_customer = retrieve("customer", deleted=True)


def _update_fields(call: Call, c: dict[str, Any]) -> None:
    c["invoice_settings"] = dict(c["invoice_settings"])
    _apply(call, c)
    source = call.params.str("source")
    if source is not None:
        c["default_source"] = card_source(call, source, c["id"])["id"]
    elif call.params.has("default_source"):
        c["default_source"] = call.params.str("default_source")


update_customer = update("customer", _update_fields, emit="if_changed")


def _end_subscriptions(call: Call, c: dict[str, Any]) -> None:
    for sub in call.all("subscription"):
        if sub["customer"] == c["id"] and sub["status"] not in ("canceled", "incomplete_expired"):
            end_subscription(call, sub)


delete_customer = delete("customer", first=_end_subscriptions)


list_customers = list_all("customer", filters={"email": "email"})


_CLAUSE = re.compile(r"""^\s*(\w+)(?:\[['"]([^'"]+)['"]\])?\s*([:~])\s*['"]([^'"]*)['"]\s*$""")


@endpoint
def search_customers(call: Call) -> dict[str, Any]:
    """``/v1/customers/search``: ``field:'value'`` clauses (email, name, phone, metadata['k']),
    ``~`` for substring, joined with AND or OR."""
    query = call.params.str("query", required=True) or ""
    joiner = " OR " if " OR " in query else " AND "
    clauses = []
    for text in query.split(joiner):
        m = _CLAUSE.match(text)
        if m is None:
            raise StripeError(400, f"Invalid search query: {query}", param="query")
        clauses.append(m.groups())

    def hit(c: dict[str, Any]) -> bool:
        results = []
        for field, key, op, want in clauses:
            value = (c.get("metadata") or {}).get(key) if field == "metadata" else c.get(field)
            value = "" if value is None else str(value)
            results.append(want.lower() in value.lower() if op == "~" else value == want)
        return any(results) if joiner == " OR " else all(results)

    limit = call.params.int("limit", default=10, minimum=1) or 10
    # one more than the page tells whether there are more: the scan stops there
    found = list(islice((c for c in call.each("customer", reverse=True) if hit(c)), limit + 1))
    return {"object": "search_result", "data": found[:limit], "has_more": len(found) > limit,
            "next_page": None, "url": "/v1/customers/search"}
