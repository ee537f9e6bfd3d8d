"""Checkout Sessions: create (answers with the hosted ``url``), retrieve, list, expire, and
their line items. Nobody pays on guard's hosted page, so a session stays ``open`` until
it is expired (by the API or when ``expires_at`` has passed)."""

from __future__ import annotations

from typing import Any

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, invalid_param, missing_param
from guard.providers.stripe.lists import listing
from guard.providers.stripe.products import price_from
from guard.providers.stripe.resource import list_all, retrieve

LINE_ITEMS = "stripe.checkout_line_items"  # session id -> its line items
DAY = 24 * 3600


def _line_items(call: Call) -> list[dict[str, Any]]:
    out = []
    for entry in call.params.items("line_items"):
        price = price_from(call, entry)
        quantity = entry.int("quantity", required=True, minimum=1) or 1
        product = call.find("product", price["product"]) or {"name": price["product"]}
        amount = (price["unit_amount"] or 0) * quantity
        out.append({
            "id": "li_" + call.world.ids.base62(24), "object": "item",
            "adjustable_quantity": None, "amount_discount": 0, "amount_subtotal": amount,
            "amount_tax": 0, "amount_total": amount, "currency": price["currency"],
            "description": product["name"], "metadata": {}, "price": price,
            "quantity": quantity,
        })
    return out


def _expire_if_due(call: Call, session: dict[str, Any]) -> dict[str, Any]:
    if session["status"] == "open" and session["expires_at"] <= call.now:
        session.update(status="expired", url=None)
        call.save(session)
        call.event("checkout.session.expired", session)
    return session


@endpoint
def create_checkout_session(call: Call) -> dict[str, Any]:
    p = call.params
    mode = p.enum("mode", ("payment", "setup", "subscription"), required=True)
    items = _line_items(call)
    if mode != "setup" and not items:
        raise missing_param("line_items")
    if mode == "subscription" and any(i["price"]["type"] != "recurring" for i in items):
        raise invalid_param("line_items", "You must provide at least one recurring price in "
                            "`subscription` mode when using prices.")
    if mode == "payment" and any(i["price"]["type"] == "recurring" for i in items):
        raise invalid_param("line_items", "You specified `payment` mode but passed a recurring "
                            "price. Either switch to `subscription` mode or use only one-time "
                            "prices.")
    currencies = {i["currency"] for i in items}
    if len(currencies) > 1:
        raise invalid_param("line_items", "All line items must use the same currency.")
    currency = currencies.pop() if currencies else (p.str("currency") or "").lower() or None
    ui_mode = p.enum("ui_mode", ("custom", "embedded", "hosted"), default="hosted")
    customer = p.str("customer")
    if customer is not None:
        call.get("customer", customer, param="customer")
    cs_id = call.new_id("checkout.session")
    total = sum(i["amount_total"] for i in items)
    expires = p.int("expires_at") or call.now + DAY
    if not call.now + 1800 <= expires <= call.now + DAY:
        raise invalid_param("expires_at", "The `expires_at` timestamp must be between 30 "
                            "minutes and 24 hours from Checkout Session creation.")
    if ui_mode == "hosted" and p.has("return_url"):
        raise StripeError(400, "You may only specify `return_url` when `ui_mode` is "
                          "`embedded` or `custom`.", param="return_url")
    session: dict[str, Any] = {
        "id": cs_id, "object": "checkout.session",
        "adaptive_pricing": {"enabled": False}, "after_expiration": None,
        "allow_promotion_codes": p.bool("allow_promotion_codes"),
        "amount_subtotal": total if mode != "setup" else None,
        "amount_total": total if mode != "setup" else None,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None,
                          "status": None},
        "billing_address_collection": p.enum("billing_address_collection",
                                             ("auto", "required")),
        "cancel_url": p.str("cancel_url"),
        "client_reference_id": p.str("client_reference_id"),
        "client_secret": None if ui_mode == "hosted"
        else f"{cs_id}_secret_{call.world.ids.base62(24)}",
        "collected_information": None, "consent": None, "consent_collection": None,
        "created": call.now, "currency": currency, "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": customer, "customer_account": None,
        "customer_creation": "if_required" if mode == "payment" and customer is None
        else None,
        "customer_details": None, "customer_email": p.str("customer_email"),
        "discounts": [], "expires_at": expires, "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {"enabled": False, "invoice_data": {
            "account_tax_ids": None, "custom_fields": None, "description": None,
            "footer": None, "issuer": None, "metadata": {}, "rendering_options": None}}
        if mode == "payment" else None,
        "livemode": False, "locale": p.str("locale"), "managed_payments": None,
        "metadata": p.metadata(), "mode": mode, "origin_context": None,
        "payment_intent": None, "payment_link": None,
        "payment_method_collection": "always" if mode == "subscription" else None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": p.strings("payment_method_types") or ["card"],
        "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
        "permissions": None, "phone_number_collection": {"enabled": False},
        "recovered_from": None, "saved_payment_method_options": None,
        "setup_intent": None, "shipping_address_collection": None, "shipping_cost": None,
        "shipping_options": [], "status": "open",
        "submit_type": p.enum("submit_type", ("auto", "book", "donate", "pay", "subscribe")),
        "subscription": None, "success_url": p.str("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": ui_mode,
        "url": f"https://checkout.stripe.com/c/pay/{cs_id}#{call.world.ids.base62(60)}"
        if ui_mode == "hosted" else None,
        "wallet_options": None,
    }
    call.save(session)
    call.world.put(LINE_ITEMS, {"id": cs_id, "items": items})
    return session


retrieve_checkout_session = retrieve("checkout.session", view=_expire_if_due)


list_checkout_sessions = list_all("checkout.session", view=_expire_if_due, filters={
    "customer": "customer", "payment_intent": "payment_intent",
    "subscription": "subscription", "status": "status"})


@endpoint
def expire_checkout_session(call: Call) -> dict[str, Any]:
    session = _expire_if_due(call, call.get("checkout.session", call.capture("id")))
    if session["status"] != "open":
        raise StripeError(400, "Only Checkout Sessions with a status in [\"open\"] can be "
                          f"expired. This Checkout Session has a status of "
                          f"\"{session['status']}\".", code="checkout_session_unexpected_state")
    session.update(status="expired", url=None)
    call.save(session)
    call.event("checkout.session.expired", session)
    return session


@endpoint
def list_checkout_session_line_items(call: Call) -> dict[str, Any]:
    session = call.get("checkout.session", call.capture("id"))
    stored = call.world.get(LINE_ITEMS, session["id"]) or {"items": []}
    return listing(call, "checkout.session", list(reversed(stored["items"])),
                   url=f"/v1/checkout/sessions/{session['id']}/line_items")
