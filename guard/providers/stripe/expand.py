"""``expand[]``: replace an id in the answer with the object it names, as Stripe does.

Paths are dotted (``latest_charge``, ``data.customer``, ``latest_invoice.subscription``)
and at most four levels deep. A field that holds no expandable id is a 400, as in Stripe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guard.providers.stripe.errors import StripeError, not_expandable

if TYPE_CHECKING:
    from guard.providers.stripe.call import Call

# field name -> the object type its id names
FIELDS = {
    "customer": "customer",
    "latest_charge": "charge",
    "charge": "charge",
    "payment_intent": "payment_intent",
    "payment_method": "payment_method",
    "default_payment_method": "payment_method",
    "balance_transaction": "balance_transaction",
    "invoice": "invoice",
    "latest_invoice": "invoice",
    "subscription": "subscription",
    "product": "product",
    "default_price": "price",
    "price": "price",
    "default_source": "card",
}

MAX_DEPTH = 4


def expand(call: Call, obj: dict[str, Any]) -> dict[str, Any]:
    """Expand every ``expand[]`` path of the call in ``obj`` (changed in place)."""
    for i, path in enumerate(call.params.strings("expand") or []):
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise StripeError(400, "You cannot expand more than 4 levels of a property.",
                              param=f"expand[{i}]")
        _expand(call, obj, parts, f"expand[{i}]")
    return obj


def _expand(call: Call, node: Any, parts: list[str], param: str) -> None:
    if isinstance(node, list):
        for item in node:
            _expand(call, item, parts, param)
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head not in node:
        raise not_expandable(head, param)
    value = node[head]
    if isinstance(value, str) or (not rest and not isinstance(value, (dict, type(None)))):
        object_name = FIELDS.get(head)
        if object_name is None:
            raise not_expandable(head, param)
        found = call.find(object_name, value) if isinstance(value, str) else None
        if found is not None:
            node[head] = value = found
    elif not rest and head not in FIELDS:
        raise not_expandable(head, param)
    if rest:
        _expand(call, value, rest, param)
