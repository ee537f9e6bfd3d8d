"""Subscriptions: created with ``items``, they draft, finalize and pay their first invoice
(status ``active``; ``trialing`` with a trial; ``incomplete`` when there is no payment
method or the card declines); update, cancel, list; subscription items."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, invalid_param, missing_param
from guard.providers.stripe.invoicing import finalize, line, new_invoice, pay, payment_method_for
from guard.providers.stripe.lists import listing
from guard.providers.stripe.params import Params
from guard.providers.stripe.products import plan_of, price_from
from guard.providers.stripe.resource import list_all, retrieve, update
from guard.request import Response

BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete",
             "pending_if_incomplete")


def add_interval(ts: int, interval: str, count: int) -> int:
    """``ts`` moved on by ``count`` intervals, months and years by the calendar."""
    if interval in ("day", "week"):
        return ts + count * (86400 if interval == "day" else 7 * 86400)
    t = datetime.fromtimestamp(ts, UTC)
    months = t.month - 1 + count * (12 if interval == "year" else 1)
    year, month = t.year + months // 12, months % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return int(t.replace(year=year, month=month, day=day).timestamp())


def _item(call: Call, sub_id: str, p: Params, start: int) -> dict[str, Any]:
    price = price_from(call, p)
    if price["type"] != "recurring":
        raise invalid_param(p.name("price"), "The price specified is set to `type=one_time` "
                            "but this field only accepts prices with `type=recurring`.")
    r = price["recurring"]
    item: dict[str, Any] = {
        "id": call.new_id("subscription_item"), "object": "subscription_item",
        "billing_thresholds": None, "created": call.now,
        "current_period_end": add_interval(start, r["interval"], r["interval_count"]),
        "current_period_start": start, "discounts": [], "metadata": p.metadata(),
        "plan": plan_of(price), "price": price,
        "quantity": p.int("quantity", default=1, minimum=0), "subscription": sub_id,
        "tax_rates": [],
    }
    return call.save(item)


def _items_list(sub_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": False, "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={sub_id}"}


@endpoint
def create_subscription(call: Call) -> Any:
    p = call.params
    customer = call.get("customer", p.str("customer", required=True), param="customer")
    entries = p.items("items")
    if not entries:
        raise missing_param("items")
    method = p.enum("collection_method", ("charge_automatically", "send_invoice"),
                    default="charge_automatically") or "charge_automatically"
    days = p.int("days_until_due")
    if method == "send_invoice" and days is None:
        raise missing_param("days_until_due")
    behavior = p.enum("payment_behavior", BEHAVIORS, default="allow_incomplete")
    pm_id = p.str("default_payment_method")
    if pm_id is not None:
        pm = call.get("payment_method", pm_id, param="default_payment_method")
        if pm["customer"] != customer["id"]:
            raise StripeError(400, f"The customer does not have a payment method with the ID "
                              f"{pm_id}. The payment method must be attached to the customer.",
                              code="resource_missing", param="default_payment_method")
    sub_id = call.new_id("subscription")
    now = call.now
    items = [_item(call, sub_id, e, now) for e in entries]
    currency = items[0]["price"]["currency"]
    if any(i["price"]["currency"] != currency for i in items):
        raise invalid_param("items", "All prices on a subscription must have the same currency.")
    trial_days = p.int("trial_period_days", minimum=0)
    trial_end = now + trial_days * 86400 if trial_days else None
    if p.has("trial_end"):
        raw = p.str("trial_end")
        trial_end = None if raw == "now" else p.int("trial_end")
    sub: dict[str, Any] = {
        "id": sub_id, "object": "subscription", "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": trial_end or now, "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"}, "billing_schedules": [],
        "billing_thresholds": None, "cancel_at": None,
        "cancel_at_period_end": bool(p.bool("cancel_at_period_end")), "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": method, "created": now, "currency": currency,
        "customer": customer["id"], "customer_account": None, "days_until_due": days,
        "default_payment_method": pm_id, "default_source": None, "default_tax_rates": [],
        "description": p.str("description"), "discounts": [], "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "custom_fields": None, "description": None,
                             "footer": None, "issuer": {"type": "self"}},
        "items": _items_list(sub_id, items), "latest_invoice": None, "livemode": False,
        "managed_payments": None, "metadata": p.metadata(),
        "next_pending_invoice_item_invoice": None, "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None, "pending_setup_intent": None,
        "pending_update": None, "schedule": None, "start_date": now, "status": "incomplete",
        "test_clock": None, "transfer_data": None, "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": now if trial_end else None,
    }
    call.save(sub)
    if customer["currency"] is None:
        customer["currency"] = currency
        call.save(customer)
    period = (now, trial_end or items[0]["current_period_end"])
    inv = new_invoice(call, customer, currency=currency, billing_reason="subscription_create",
                      collection_method=method, subscription=sub, period=(now, now),
                      days_until_due=days, default_payment_method=pm_id)
    for item in items:
        price = item["price"]
        product = call.find("product", price["product"]) or {"name": price["product"]}
        amount = 0 if trial_end else (price["unit_amount"] or 0) * item["quantity"]
        label = f"Trial period for {product['name']}" if trial_end else \
            f"{item['quantity']} × {product['name']} (at {_price_text(price)})"
        line(call, inv, amount=amount, price=price, quantity=item["quantity"],
             description=label, period=period, subscription_item=item["id"])
    finalize(call, inv)
    sub["latest_invoice"] = inv["id"]
    declined: Response | None = None
    if inv["status"] == "paid":
        sub["status"] = "trialing" if trial_end else "active"
    elif method == "send_invoice":
        sub["status"] = "active"
    elif behavior == "default_incomplete":
        pay(call, inv, None)
    else:
        pm_for = payment_method_for(call, inv)
        if pm_for is None and behavior == "error_if_incomplete":
            raise StripeError(400, "This customer has no attached payment source or default "
                              "payment method. Please consider adding a default payment "
                              "method.", param="default_payment_method")
        _, declined = pay(call, inv, pm_for)
        if declined is None and pm_for is not None:
            sub["status"] = "active"
        elif declined is not None and behavior == "error_if_incomplete":
            body = declined.body  # the decline, with the whole subscription undone
            raise _as_error(call, body)
    call.save(sub)
    call.event("customer.subscription.created", sub)
    return sub


def _as_error(call: Call, body: bytes) -> StripeError:
    import json

    err = json.loads(body)["error"]
    return StripeError(402, err["message"], type="card_error", code=err.get("code"),
                       decline_code=err.get("decline_code"))


def _price_text(price: dict[str, Any]) -> str:
    amount = (price["unit_amount"] or 0) / 100
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(price["currency"], "")
    interval = price["recurring"]["interval"]
    return f"{symbol}{amount:.2f} / {interval}" if symbol else \
        f"{amount:.2f} {price['currency'].upper()} / {interval}"


def end_subscription(call: Call, sub: dict[str, Any], reason: str = "cancellation_requested"
                     ) -> dict[str, Any]:
    sub.update(status="canceled", canceled_at=call.now, ended_at=call.now,
               cancellation_details=dict(sub["cancellation_details"], reason=reason))
    call.save(sub)
    call.event("customer.subscription.deleted", sub)
    return sub


retrieve_subscription = retrieve("subscription")


def _subscription_fields(call: Call, sub: dict[str, Any]) -> None:
    p = call.params
    if sub["status"] == "canceled":
        # As Stripe: only metadata and cancellation_details change on a canceled one.
        others = [k for k in p.keys()
                  if k not in ("metadata", "cancellation_details", "expand")]
        if others:
            raise StripeError(400, "A canceled subscription can only update its cancellation_"
                              "details and metadata.", param=others[0])
        sub["metadata"] = p.metadata(sub["metadata"])
        details = p.sub("cancellation_details")
        if p.has("cancellation_details"):
            current = sub.get("cancellation_details") or {}
            sub["cancellation_details"] = {
                **current, **{k: details.str(k) for k in ("comment", "feedback")
                              if details.has(k)}}
        return
    if p.has("cancel_at_period_end"):
        sub["cancel_at_period_end"] = bool(p.bool("cancel_at_period_end"))
        sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] \
            if sub["cancel_at_period_end"] else None
    for key in ("description", "default_payment_method"):
        if p.has(key):
            sub[key] = p.str(key)
    sub["metadata"] = p.metadata(sub["metadata"])
    items = list(sub["items"]["data"])
    for entry in p.items("items"):
        item_id = entry.str("id")
        if item_id is None:
            items.append(_item(call, sub["id"], entry, call.now))
            continue
        item = call.get("subscription_item", item_id, param=f"{entry.name('id')}")
        if entry.bool("deleted"):
            items = [i for i in items if i["id"] != item_id]
            continue
        if entry.has("price") or entry.has("price_data"):
            price = price_from(call, entry)
            item.update(price=price, plan=plan_of(price))
        if entry.has("quantity"):
            item["quantity"] = entry.int("quantity", minimum=0)
        item["metadata"] = entry.metadata(item["metadata"])
        call.save(item)
        items = [item if i["id"] == item_id else i for i in items]
    sub["items"] = _items_list(sub["id"], items)


update_subscription = update("subscription", _subscription_fields,
                             event="customer.subscription.updated")


@endpoint
def cancel_subscription(call: Call) -> dict[str, Any]:
    sub = call.get("subscription", call.capture("id"))
    if sub["status"] == "canceled":
        raise StripeError(404, f"No such subscription: '{sub['id']}'", code="resource_missing",
                          param="id")
    return end_subscription(call, sub)


def _of_status_and_price(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Not ended ones by default; ``status`` (or ``all``) and ``price`` narrow it."""
    status = call.params.str("status")
    if status is None:
        items = [s for s in items if s["status"] not in ("canceled", "incomplete_expired")]
    elif status != "all":
        items = [s for s in items if s["status"] == status]
    price = call.params.str("price")
    if price:
        items = [s for s in items if any(i["price"]["id"] == price for i in s["items"]["data"])]
    return items


list_subscriptions = list_all("subscription", select=_of_status_and_price, filters={
    "customer": "customer", "collection_method": "collection_method"})


retrieve_subscription_item = retrieve("subscription_item")


@endpoint
def list_subscription_items(call: Call) -> dict[str, Any]:
    sub = call.get("subscription", call.params.str("subscription", required=True),
                   param="subscription")
    ids = {i["id"] for i in sub["items"]["data"]}
    items = [i for i in call.each("subscription_item") if i["id"] in ids]
    return listing(call, "subscription_item", items,
                   url=f"/v1/subscription_items?subscription={sub['id']}")

