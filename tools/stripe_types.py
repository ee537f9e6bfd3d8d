"""Extract the field list and nullability of Stripe objects from the official stripe-node
type definitions into tests/providers/stripe_api/stripe_types.json.

The fixture-comparison test (tests/providers/stripe_api/test_realism.py) uses it to tell a field
Stripe marks ``T | null`` (guard may answer null where the example object shows a value)
from one it never nulls, and to accept fields the example object happens not to show.

    npm pack stripe && tar xzf stripe-*.tgz
    .venv/bin/python tools/stripe_types.py package/esm/resources

stripe-node is generated from Stripe's OpenAPI spec, so ``field: T | null`` there is
``nullable: true`` in the spec.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "tests/providers/stripe_api/stripe_types.json"

# object type -> (file under resources/, interface name)
ROOTS = {
    "balance": ("Balance.d.ts", "Balance"),
    "balance_transaction": ("BalanceTransactions.d.ts", "BalanceTransaction"),
    "card": ("Cards.d.ts", "Card"),
    "charge": ("Charges.d.ts", "Charge"),
    "checkout.session": ("Checkout/Sessions.d.ts", "Session"),
    "customer": ("Customers.d.ts", "Customer"),
    "deleted_customer": ("Customers.d.ts", "DeletedCustomer"),
    "deleted_product": ("Products.d.ts", "DeletedProduct"),
    "deleted_webhook_endpoint": ("WebhookEndpoints.d.ts", "DeletedWebhookEndpoint"),
    "deleted_invoiceitem": ("InvoiceItems.d.ts", "DeletedInvoiceItem"),
    "deleted_invoice": ("Invoices.d.ts", "DeletedInvoice"),
    "event": ("Events.d.ts", "EventBase"),
    "invoice": ("Invoices.d.ts", "Invoice"),
    "invoiceitem": ("InvoiceItems.d.ts", "InvoiceItem"),
    "item": ("LineItems.d.ts", "LineItem"),
    "line_item": ("InvoiceLineItems.d.ts", "InvoiceLineItem"),
    "payment_intent": ("PaymentIntents.d.ts", "PaymentIntent"),
    "payment_method": ("PaymentMethods.d.ts", "PaymentMethod"),
    "plan": ("Plans.d.ts", "Plan"),
    "price": ("Prices.d.ts", "Price"),
    "product": ("Products.d.ts", "Product"),
    "refund": ("Refunds.d.ts", "Refund"),
    "subscription": ("Subscriptions.d.ts", "Subscription"),
    "subscription_item": ("SubscriptionItems.d.ts", "SubscriptionItem"),
    "token": ("Tokens.d.ts", "Token"),
    "webhook_endpoint": ("WebhookEndpoints.d.ts", "WebhookEndpoint"),
}

_OPEN = re.compile(
    r"^( *)(?:export )?(?:declare )?(interface|namespace) (\w+)(?: extends [\w., ]+)? \{$")
_FIELD = re.compile(r"^ *(\w+)(\?)?: (.*)$")
_PRIMITIVE = {"string", "number", "boolean", "null", "Metadata", "void", "any", "object"}


def parse(text: str) -> dict[str, dict[str, dict[str, Any]]]:
    """interface path (``Customer.InvoiceSettings``) -> field -> {nullable, optional, type}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    stack: list[tuple[int, str, str]] = []  # (indent, kind, name)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = _OPEN.match(line)
        if m:
            stack.append((len(m.group(1)), m.group(2), m.group(3)))
            if m.group(2) == "interface":
                out.setdefault(".".join(n for _, _, n in stack), {})
            continue
        stripped = line.strip()
        if stripped == "}" and stack:
            indent = len(line) - len(line.lstrip())
            if indent == stack[-1][0]:
                stack.pop()
            continue
        if not stack or stack[-1][1] != "interface" or stripped.startswith(("*", "/")):
            continue
        f = _FIELD.match(line)
        if not f or len(line) - len(line.lstrip()) != stack[-1][0] + 4:
            continue
        type_text = f.group(3)
        while not type_text.rstrip().endswith(";") and i < len(lines):
            type_text += " " + lines[i].strip()
            i += 1
        type_text = type_text.rstrip().rstrip(";")
        parts = [p.strip() for p in _split_union(type_text)]
        out[".".join(n for _, _, n in stack)][f.group(1)] = {
            "nullable": "null" in parts, "optional": bool(f.group(2)),
            "type": [p for p in parts if p != "null"],
        }
    return out


def _split_union(text: str) -> list[str]:
    depth, cur, parts = 0, "", []
    for ch in text:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "|" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def resolve(types: dict[str, dict[str, Any]], scope: str, field: dict[str, Any]) -> str | None:
    """The interface a field's value is described by, looked up from ``scope`` outwards."""
    for t in field["type"]:
        t = re.sub(r"^(Array|ApiList)<(.*)>$", r"\2", t)
        if t in _PRIMITIVE or t.startswith("'"):
            continue
        parts = scope.split(".")
        for n in range(len(parts), -1, -1):
            candidate = ".".join(parts[:n] + [t])
            if candidate in types:
                return candidate
    return None


def main(resources: Path) -> None:
    result: dict[str, Any] = {}
    shared = parse((resources.parent / "shared.d.ts").read_text(encoding="utf-8"))
    for object_type, (file, root) in ROOTS.items():
        types = {**shared, **parse((resources / file).read_text(encoding="utf-8"))}
        reachable: dict[str, Any] = {}
        todo = [root]
        while todo:
            name = todo.pop()
            if name in reachable or name not in types:
                continue
            fields = {}
            for key, field in types[name].items():
                ref = resolve(types, name, field)
                list_type = any(t.startswith(("Array<", "ApiList<")) for t in field["type"])
                fields[key] = {"nullable": field["nullable"], "optional": field["optional"],
                               "ref": ref, "list": list_type}
                if ref:
                    todo.append(ref)
            reachable[name] = fields
        result[object_type] = {"root": root, "types": reachable}
    version = (resources.parent.parent / "VERSION").read_text().strip() \
        if (resources.parent.parent / "VERSION").exists() else "?"
    OUT.write_text(json.dumps({"source": f"stripe-node {version} type definitions",
                               "objects": result}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
