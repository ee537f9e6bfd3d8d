"""Small readers over JSON Schema nodes as OpenAPI 3.0 and 3.1 write them.

>>> types({"type": "string", "nullable": True})
('string', 'null')
>>> types({"type": ["integer", "null"]})
('integer', 'null')
"""

from __future__ import annotations

from typing import Any

from guard.openapi.spec import Spec

_LIST_KEYS = ("data", "items", "results", "records", "values", "entries", "elements")


def types(schema: Any) -> tuple[str, ...]:
    """The JSON types a schema allows (empty: any). 3.0 ``nullable`` adds ``null``."""
    if not isinstance(schema, dict):
        return ()
    t = schema.get("type")
    out: list[str] = [t] if isinstance(t, str) else [x for x in t or [] if isinstance(x, str)]
    if not out:
        if "properties" in schema or "additionalProperties" in schema:
            out = ["object"]
        elif "items" in schema:
            out = ["array"]
    if schema.get("nullable") is True and "null" not in out:
        out.append("null")
    return tuple(out)


def merged(spec: Spec, schema: Any, depth: int = 0) -> dict[str, Any]:
    """The schema with ``$ref`` followed and ``allOf`` merged into one object schema."""
    node = spec.resolve(schema)
    if not isinstance(node, dict):
        return {}
    if "allOf" not in node or depth > 16:
        return node
    out: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    props: dict[str, Any] = dict(out.get("properties") or {})
    required: list[str] = list(out.get("required") or [])
    for part in node["allOf"]:
        sub = merged(spec, part, depth + 1)
        props.update(sub.get("properties") or {})
        required.extend(r for r in sub.get("required") or [] if r not in required)
        for k, v in sub.items():
            # A polymorphic parent (``oneOf`` its children, each ``allOf: [parent, ...]``)
            # does not pass its alternatives down to the children.
            if k not in ("properties", "required", "oneOf", "anyOf", "discriminator"):
                out.setdefault(k, v)
    if props:
        out["properties"] = props
    if required:
        out["required"] = required
    return out


def list_shape(spec: Spec, schema: Any) -> tuple[str | None, Any] | None:
    """``(key, item schema)`` when an answer is a list: a top-level array (key ``None``) or an
    object holding its page in ``data`` (Stripe), ``items``, ``results``, ...; else ``None``."""
    node = merged(spec, schema)
    if "array" in types(node):
        return None, node.get("items") or {}
    props = node.get("properties") or {}
    for key in _LIST_KEYS:
        if key in props:
            sub = merged(spec, props[key])
            if "array" in types(sub):
                return key, sub.get("items") or {}
    arrays = [k for k, v in props.items() if "array" in types(merged(spec, v))]
    if len(arrays) == 1 and len(props) <= 6:
        return arrays[0], merged(spec, props[arrays[0]]).get("items") or {}
    return None


def object_name(spec: Spec, schema: Any) -> str | None:
    """The value of a single-valued ``object`` enum (Stripe's ``"object": "customer"``)."""
    node = merged(spec, schema)
    prop = spec.resolve((node.get("properties") or {}).get("object"))
    if isinstance(prop, dict):
        enum = prop.get("enum")
        if isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str):
            return enum[0]
    return None


def branches(spec: Spec, schema: Any) -> list[Any]:
    """The alternatives of ``anyOf``/``oneOf`` (the schema itself when it has none)."""
    node = spec.resolve(schema)
    if isinstance(node, dict):
        alts = node.get("anyOf") or node.get("oneOf")
        if isinstance(alts, list) and alts:
            return alts
    return [node]
