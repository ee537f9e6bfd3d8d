"""The catalogue: products and prices (one-time or recurring), and the legacy ``plan``
view of a recurring price that subscription items carry."""

from __future__ import annotations

import re
from typing import Any

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, invalid_param, missing_param
from guard.providers.stripe.params import Params
from guard.providers.stripe.resource import delete, list_all, retrieve, update

INTERVALS = ("day", "month", "week", "year")
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _product_fields(p: Params, prod: dict[str, Any]) -> None:
    for key in ("name", "description", "statement_descriptor", "tax_code", "unit_label", "url"):
        if p.has(key):
            prod[key] = p.str(key, required=key == "name")
    for key in ("active", "shippable"):
        if p.has(key):
            prod[key] = p.bool(key)
    if p.has("images"):
        prod["images"] = p.strings("images") or []
    if p.has("marketing_features"):
        prod["marketing_features"] = [{"name": f.str("name", required=True)}
                                      for f in p.items("marketing_features")]
    if p.has("default_price"):
        prod["default_price"] = p.str("default_price")
    prod["metadata"] = p.metadata(prod["metadata"])


def new_product(call: Call, p: Params) -> dict[str, Any]:
    custom = p.str("id")
    if custom is not None:
        if not _CUSTOM_ID.match(custom):
            raise invalid_param("id", f"Invalid id: {custom}")
        if call.find("product", custom) is not None:
            raise StripeError(400, "Product already exists.", code="resource_already_exists",
                              param="id")
    prod: dict[str, Any] = {
        "id": custom or call.new_id("product"), "object": "product", "active": True,
        "created": call.now, "default_price": None, "description": None, "images": [],
        "livemode": False, "marketing_features": [], "metadata": {}, "name": None,
        "package_dimensions": None, "shippable": None, "statement_descriptor": None,
        "tax_code": None, "type": "service", "unit_label": None, "updated": call.now,
        "url": None,
    }
    if not p.has("name"):
        raise missing_param(p.name("name"))
    _product_fields(p, prod)
    call.save(prod)
    call.event("product.created", prod)
    return prod


def new_price(call: Call, p: Params, product_id: str) -> dict[str, Any]:
    currency = (p.str("currency", required=True) or "").lower()
    unit_amount = p.int("unit_amount", minimum=0)
    decimal = p.str("unit_amount_decimal")
    custom = p.sub("custom_unit_amount")
    if unit_amount is None and decimal is not None:
        try:
            unit_amount = int(float(decimal))
        except ValueError:
            raise invalid_param(p.name("unit_amount_decimal"),
                                f"Invalid decimal: {decimal}") from None
    if unit_amount is None and not custom.bool("enabled"):
        raise missing_param(p.name("unit_amount"))
    recurring = None
    if p.has("recurring"):
        r = p.sub("recurring")
        recurring = {
            "interval": r.enum("interval", INTERVALS, required=True),
            "interval_count": r.int("interval_count", default=1, minimum=1),
            "meter": None,
            "trial_period_days": r.int("trial_period_days"),
            "usage_type": r.enum("usage_type", ("licensed", "metered"), default="licensed"),
        }
    price = {
        "id": call.new_id("price"), "object": "price", "active": True,
        "billing_scheme": "per_unit", "created": call.now, "currency": currency,
        "custom_unit_amount": {"maximum": custom.int("maximum"), "minimum": custom.int("minimum"),
                               "preset": custom.int("preset")} if custom.bool("enabled") else None,
        "livemode": False, "lookup_key": p.str("lookup_key"), "metadata": p.metadata(),
        "nickname": p.str("nickname"), "product": product_id, "recurring": recurring,
        "tax_behavior": p.enum("tax_behavior", ("exclusive", "inclusive", "unspecified"),
                               default="unspecified"),
        "tiers_mode": None, "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount) if decimal is None else decimal,
    }
    if price["lookup_key"]:
        for other in call.all("price"):
            if other["lookup_key"] == price["lookup_key"]:
                if not p.bool("transfer_lookup_key"):
                    raise StripeError(400, "A price (`{}`) already uses that lookup key."
                                      .format(other["id"]), param=p.name("lookup_key"))
                other["lookup_key"] = None
                call.save(other)
    call.save(price)
    call.event("price.created", price)
    return price


def plan_of(price: dict[str, Any]) -> dict[str, Any]:
    """The legacy ``plan`` object Stripe shows next to a recurring price."""
    r = price["recurring"] or {}
    return {
        "id": price["id"], "object": "plan", "active": price["active"],
        "amount": price["unit_amount"], "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"], "created": price["created"],
        "currency": price["currency"], "interval": r.get("interval"),
        "interval_count": r.get("interval_count"), "livemode": False,
        "metadata": price["metadata"], "meter": None, "nickname": price["nickname"],
        "product": price["product"], "tiers_mode": None, "transform_usage": None,
        "trial_period_days": r.get("trial_period_days"),
        "usage_type": r.get("usage_type", "licensed"),
    }


def price_from(call: Call, p: Params) -> dict[str, Any]:
    """``price`` or inline ``price_data`` (subscription items, checkout line items)."""
    if p.has("price"):
        return call.get("price", p.str("price", required=True), param=p.name("price"))
    if p.has("price_data"):
        data = p.sub("price_data")
        product = data.str("product")
        if product is None and data.has("product_data"):
            product = new_product(call, data.sub("product_data"))["id"]
        if product is None:
            raise missing_param(data.name("product"))
        call.get("product", product, param=data.name("product"))
        return new_price(call, data, product)
    raise missing_param(p.name("price"))


@endpoint
def create_product(call: Call) -> dict[str, Any]:
    prod = new_product(call, call.params)
    if call.params.has("default_price_data"):
        price = new_price(call, call.params.sub("default_price_data"), prod["id"])
        prod["default_price"] = price["id"]
        call.save(prod)
    return prod


retrieve_product = retrieve("product")


def _update_product_fields(call: Call, prod: dict[str, Any]) -> None:
    _product_fields(call.params, prod)
    # only a default price sent now is checked (a metadata update leaves the one it has)
    if call.params.has("default_price") and prod["default_price"] is not None:
        price = call.get("price", prod["default_price"], param="default_price")
        if price["product"] != prod["id"]:
            raise invalid_param("default_price", "The price must belong to this product.")
    prod["updated"] = call.now


update_product = update("product", _update_product_fields)


def _has_no_prices(call: Call, prod: dict[str, Any]) -> None:
    if any(pr["product"] == prod["id"] for pr in call.each("price")):
        raise StripeError(400, "This product cannot be deleted because it has one or more "
                          "user-created prices.", code="product_has_prices")


delete_product = delete("product", first=_has_no_prices)


def _of_ids(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = call.params.strings("ids")
    return [pr for pr in items if pr["id"] in ids] if ids else items


list_products = list_all("product", select=_of_ids,
                         filters={"active": "active", "shippable": "shippable"})


@endpoint
def create_price(call: Call) -> dict[str, Any]:
    p = call.params
    if p.has("product_data"):
        product = new_product(call, p.sub("product_data"))["id"]
    else:
        product = p.str("product", required=True) or ""
        call.get("product", product, param="product")
    return new_price(call, p, product)


retrieve_price = retrieve("price")


def _price_fields(call: Call, price: dict[str, Any]) -> None:
    p = call.params
    for key in ("nickname", "lookup_key"):
        if p.has(key):
            price[key] = p.str(key)
    if p.has("active"):
        price["active"] = p.bool("active")
    if p.has("tax_behavior"):
        price["tax_behavior"] = p.enum("tax_behavior", ("exclusive", "inclusive", "unspecified"))
    price["metadata"] = p.metadata(price["metadata"])


update_price = update("price", _price_fields)


def _of_keys_and_interval(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = call.params.strings("lookup_keys")
    if keys:
        items = [pr for pr in items if pr["lookup_key"] in keys]
    interval = call.params.sub("recurring").str("interval")
    if interval:
        items = [pr for pr in items if (pr["recurring"] or {}).get("interval") == interval]
    return items


list_prices = list_all("price", select=_of_keys_and_interval, filters={
    "product": "product", "active": "active", "type": "type", "currency": "currency"})