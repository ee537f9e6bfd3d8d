"""Addresses and shipping details as Stripe shows them: all six address keys, the ones
not sent as null. Used by customers, payment methods' billing details and charges.
"""

from __future__ import annotations

from typing import Any

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
