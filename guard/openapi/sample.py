"""Smallest valid requests for operations: their required parameters with plausible values.

``guard pack from-openapi`` writes them as the new pack's cases, and the Stripe measurement
(tools/measure_stripe.py) sends one per operation.

>>> encode_form({"items": [{"price": "p_1"}], "metadata": {"a": "b"}, "ok": True})
[('items[0][price]', 'p_1'), ('metadata[a]', 'b'), ('ok', 'true')]
"""

from __future__ import annotations

import json
from typing import Any

from guard.openapi.operations import FORM, JSON, MULTIPART, Operation
from guard.openapi.schema import merged, types
from guard.openapi.spec import Spec

_WORDS = {"currency": "usd", "country": "US", "email": "jenny.rosen@example.com",
          "url": "https://example.com/", "return_url": "https://example.com/return",
          "success_url": "https://example.com/success", "name": "Jenny Rosen",
          "interval": "month", "type": None, "query": "metadata['order_id']:'6735'"}


def minimal(spec: Spec, schema: Any, name: str = "", depth: int = 0) -> Any:
    """A value with only what ``schema`` requires."""
    node = merged(spec, schema)
    if depth > 12:
        return None
    if "example" in node and not isinstance(node["example"], (dict, list)):
        return node["example"]
    alts = node.get("anyOf") or node.get("oneOf")
    if isinstance(alts, list) and alts:
        usable = [a for a in alts if merged(spec, a).get("enum") != [""]]
        return minimal(spec, (usable or alts)[0], name, depth + 1)
    enum = node.get("enum")
    if isinstance(enum, list) and enum:
        return next((e for e in enum if e != ""), enum[0])
    t = [k for k in types(node) if k != "null"] or ["string"]
    if "object" in t:
        props = node.get("properties") or {}
        out = {k: minimal(spec, props.get(k, {}), k, depth + 1)
               for k in node.get("required") or [] if k in props}
        if not out and props and depth > 0:
            # a required object with no required fields still needs one to be sent at all
            first = next(iter(props))
            out = {first: minimal(spec, props[first], first, depth + 1)}
        return out
    if "array" in t:
        return [minimal(spec, node.get("items") or {}, name, depth + 1)]
    if "integer" in t:
        low = node.get("minimum")
        return int(low) if isinstance(low, (int, float)) and low > 0 else \
            (1000 if "amount" in name else 1)
    if "number" in t:
        return 1.5
    if "boolean" in t:
        return True
    if node.get("format") == "email" or name.endswith("email"):
        return "jenny.rosen@example.com"
    if node.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    if node.get("format") == "date":
        return "2026-01-01"
    if node.get("format") == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    word = _WORDS.get(name)
    text = word if isinstance(word, str) else f"sample_{name or 'value'}"
    limit = node.get("maxLength")
    return text[:limit] if isinstance(limit, int) and limit > 0 else text


def encode_form(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: ``a[b][0][c]=v``, booleans as ``true``/``false``."""
    out: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.extend(encode_form(v, f"{prefix}[{k}]" if prefix else str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.extend(encode_form(v, f"{prefix}[{i}]"))
    elif isinstance(data, bool):
        out.append((prefix, "true" if data else "false"))
    elif data is not None:
        out.append((prefix, str(data)))
    return out


def request_parts(op: Operation) -> tuple[dict[str, Any], Any, str | None]:
    """``(query, body, content type)`` with every required parameter of ``op``."""
    spec = op.spec
    query = {p.name: minimal(spec, p.schema, p.name) for p in op.params
             if p.where == "query" and p.required}
    if op.body is None:
        return query, None, None
    for media in (FORM, JSON, MULTIPART):
        if media in op.body:
            body = minimal(spec, op.body[media])
            if media == JSON and body == {} and op.body_required:
                return query, body, media
            return query, body if body else None, media
    return query, None, None


def encode_body(body: Any, media: str | None) -> bytes:
    if body is None or media is None:
        return b""
    if media == JSON:
        return json.dumps(body).encode()
    from urllib.parse import urlencode

    return urlencode(encode_form(body)).encode()
