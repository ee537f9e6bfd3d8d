"""Customers: create, retrieve, update, delete (a ``deleted`` object), list and search."""

from __future__ import annotations

import re
from typing import Any

from guard.providers.stripe.api import Call, endpoint
from guard.providers.stripe.errors import StripeError
from guard.providers.stripe.events import changed
from guard.providers.stripe.lists import listing
from guard.providers.stripe.params import Params

ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")


def address(p: Params, key: str) -> dict[str, Any] | None:
    """An address hash with all six keys (Stripe fills the ones not sent with null)."""
    if not p.has(key) or p.raw(key) == "":
        return None
    sub = p.sub(key)
    return {k: sub.str(k) for k in ADDRESS_KEYS}


def shipping(p: Params) -> dict[str, Any] | None:
    if not p.has("shipping") or p.raw("shipping") == "":
        return None
    sub = p.sub("shipping")
    return {"address": address(sub, "address") or dict.fromkeys(ADDRESS_KEYS),
            "name": sub.str("name", required=True), "phone": sub.str("phone")}


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
    from guard.providers.stripe.payment_methods import attach_to, card_source

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


@endpoint
def retrieve_customer(call: Call) -> dict[str, Any]:
    return call.get("customer", call.capture("id"), deleted=True)


@endpoint
def update_customer(call: Call) -> dict[str, Any]:
    from guard.providers.stripe.payment_methods import card_source

    before = call.get("customer", call.capture("id"))
    c = dict(before, invoice_settings=dict(before["invoice_settings"]))
    _apply(call, c)
    source = call.params.str("source")
    if source is not None:
        c["default_source"] = card_source(call, source, c["id"])["id"]
    elif call.params.has("default_source"):
        c["default_source"] = call.params.str("default_source")
    call.save(c)
    diff = changed(before, c)
    if diff:
        call.event("customer.updated", c, diff)
    return c


@endpoint
def delete_customer(call: Call) -> dict[str, Any]:
    c = call.get("customer", call.capture("id"))
    for sub in call.all("subscription"):
        if sub["customer"] == c["id"] and sub["status"] not in ("canceled", "incomplete_expired"):
            from guard.providers.stripe.subscriptions import end_subscription

            end_subscription(call, sub)
    call.event("customer.deleted", c)
    return call.save({"id": c["id"], "object": "customer", "deleted": True})


@endpoint
def list_customers(call: Call) -> dict[str, Any]:
    return listing(call, "customer", filters={"email": "email"})


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

    found = [c for c in reversed(call.all("customer")) if hit(c)]
    limit = call.params.int("limit", default=10, minimum=1) or 10
    return {"object": "search_result", "data": found[:limit], "has_more": len(found) > limit,
            "next_page": None, "url": "/v1/customers/search"}
