"""State for an API, read from its shape: which collection each operation works on, what an
object of it looks like, and what create, retrieve, list, update, delete and actions do to
the sandbox's world.

Collections are named ``<pack>.<object>s`` when objects say their type (Stripe's
``"object": "customer"`` -> ``stripe.customers``, the collections guard's hand-written
Stripe handlers use too), else ``<pack>.<path>``. An object created under a parent
(``/v1/customers/{customer}/tax_ids``) records the parent in the field named like the path
parameter when the object has one, else it lives in a collection of that parent.

Open world: a collection the API gives no way to create (``/v1/disputes/{id}``, events)
holds objects that exist outside the agent's doing, so an unknown id there is made on first
reference (and kept); in a collection the agent fills itself an unknown id is the
provider's not-found. A strict world (``strict: true``) answers not-found everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from guard.openapi.operations import Operation, normalize
from guard.openapi.schema import branches, list_shape, merged, object_name, types
from guard.openapi.spec import Spec

_SLUG = re.compile(r"[^a-z0-9]+")

# An action verb and the status it leaves the object in, when its status enum has it.
VERB_STATUS = {
    "cancel": ("canceled", "cancelled"), "void": ("void", "voided"), "close": ("closed",),
    "pay": ("paid",), "approve": ("approved",), "reject": ("rejected",),
    "expire": ("expired",), "archive": ("archived",), "accept": ("accepted",),
    "activate": ("active",), "deactivate": ("inactive",), "resume": ("active",),
    "pause": ("paused",), "finalize": ("open", "finalized"), "fail": ("failed",),
    "succeed": ("succeeded",), "verify": ("verified",), "submit": ("submitted",),
    "reverse": ("reversed",), "refund": ("refunded",), "confirm": ("succeeded",
                                                                    "confirmed"),
    "capture": ("succeeded", "captured"), "mark_uncollectible": ("uncollectible",),
    "send": ("open",), "release": ("released",), "process": ("processing",),
    "deliver": ("delivered",), "return": ("returned",), "decline": ("declined",),
    "adopt": ("adopted",), "publish": ("published",), "resolve": ("resolved",),
    "start": ("started", "running"), "stop": ("stopped",), "complete": ("completed",),
}


@dataclass
class Collection:
    """Objects behind one collection path."""

    path: str  # normalized: /v1/customers/{}/tax_ids
    name: str  # world collection
    schema: Any  # an object's schema
    object: str | None  # its ``object`` value, if it has one
    creatable: bool = False
    noun: str = "object"
    parent_field: dict[str, str] = field(default_factory=dict)  # path param -> object field
    wrap: str | None = None  # answers hold the object under this key ({"emailer_campaign": ...})
    # A polymorphic collection's other object types (an account's external accounts: cards
    # besides bank accounts), each kept in its own collection: world name -> schema.
    variants: dict[str, Any] = field(default_factory=dict)


def collections(spec: Spec, ops: list[Operation], pack: str) -> dict[str, Collection]:
    """One :class:`Collection` per collection path the operations use."""
    by_path: dict[str, Collection] = {}
    schemas: dict[str, list[tuple[int, Any]]] = {}
    for o in ops:
        if o.collection is None or o.schema is None:
            continue
        rank = {"retrieve": 0, "create": 1, "update": 2}.get(o.role)
        if rank is not None:
            schemas.setdefault(o.collection, []).append((rank, _item_schema(spec, o.schema)))
        elif o.role in ("list", "search"):
            shape = list_shape(spec, o.schema)
            if shape is not None:
                schemas.setdefault(o.collection, []).append((3, shape[1]))
    for path, found in schemas.items():
        ranked = [f[1] for f in sorted(found, key=lambda f: f[0])]
        schema = _common(spec, ranked)
        wrap = _wrapper(spec, schema) if found[0][0] < 3 else None
        if wrap is not None:
            schema = (merged(spec, schema).get("properties") or {})[wrap]
        obj = object_name(spec, schema)
        name = f"{pack}.{obj.replace('.', '_')}s" if obj else \
            f"{pack}.{_SLUG.sub('_', path.replace('{}', 'x').lower()).strip('_')}"
        noun = obj or _noun(path)
        props = merged(spec, schema).get("properties") or {}
        c = Collection(path, name, schema, obj, noun=noun, wrap=wrap)
        if obj:
            for alt, alt_schema in _shared(spec, ranked):
                if alt != obj:
                    c.variants[f"{pack}.{alt.replace('.', '_')}s"] = alt_schema
        by_path[path] = c
        for o in ops:
            if o.collection == path:
                for param, _ in o.parents:
                    if param in props:
                        c.parent_field[param] = param
                    elif param.endswith("_id") and param[:-3] in props:
                        c.parent_field[param] = param[:-3]  # {account_id} -> account
    for o in ops:
        if o.role == "create" and o.collection in by_path:
            by_path[o.collection].creatable = True
    return by_path


def _wrapper(spec: Spec, schema: Any) -> str | None:
    """The key an API wraps its objects in: an answer without an ``id`` of its own whose
    one object-valued property has one (``{"emailer_campaign": {"id": ...}, ...}``)."""
    props = merged(spec, schema).get("properties") or {}
    if not props or "id" in props:
        return None
    inner = [k for k, v in props.items()
             if "id" in (merged(spec, v).get("properties") or {})
             and "object" in types(merged(spec, v))]
    return inner[0] if len(inner) == 1 else None


def _common(spec: Spec, candidates: list[Any]) -> Any:
    """The object schema every operation on a collection agrees on: for polymorphic
    collections (a customer's sources: bank accounts, cards, sources) the first type that
    every operation answers."""
    shared = _shared(spec, candidates)
    return shared[0][1] if shared else candidates[0]


def _shared(spec: Spec, candidates: list[Any]) -> list[tuple[str, Any]]:
    """The object types (name, schema) every operation on a polymorphic collection
    answers, in the list's order; empty when the collection holds one type."""
    def names(schema: Any) -> list[str]:
        return [n for n in (object_name(spec, a) for a in branches(spec, schema)) if n]

    listed = [names(c) for c in candidates]
    if not all(listed) or not any(len(n) > 1 for n in listed):
        return []
    shared = [n for n in listed[-1] if all(n in other for other in listed)]
    found: dict[str, Any] = {}
    for alt in branches(spec, candidates[-1]):
        name = object_name(spec, alt)
        if name in shared and name not in found:
            found[name] = alt
    return list(found.items())


def _item_schema(spec: Spec, schema: Any) -> Any:
    """An operation answering ``anyOf: [customer, deleted_customer]`` answers a customer."""
    node = spec.resolve(schema)
    alts = node.get("anyOf") or node.get("oneOf") if isinstance(node, dict) else None
    if isinstance(alts, list):
        kept = [a for a in alts if "deleted" not in (merged(spec, a).get("properties") or {})]
        if len(kept) == 1:
            return kept[0]
        if kept and len(kept) < len(alts):
            return {"anyOf": kept}
    return schema


def _noun(path: str) -> str:
    last = [s for s in path.split("/") if s and s != "{}"][-1:] or ["object"]
    word = last[0].replace("_", " ")
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def world_collection(c: Collection, parents: dict[str, str], name: str | None = None) -> str:
    """Where objects of ``c`` (or of its variant ``name``) under these parents live (see
    the module docstring)."""
    scoped = [v for k, v in parents.items() if k not in c.parent_field]
    return (name or c.name) + "".join(f"@{p}" for p in scoped)


def apply_params(spec: Spec, obj: dict[str, Any], params: Any, schema: Any,
                 fits: Any) -> dict[str, Any]:
    """Copy the request's parameters that are fields of the object into it, as providers
    echo what they were sent. ``metadata[k]=`` removes a key, ``metadata=`` clears them;
    an empty string unsets a nullable field. ``fits(value, schema)`` keeps only values the
    answer's schema allows."""
    if not isinstance(params, dict):
        return obj
    props = merged(spec, schema).get("properties") or {}
    for key, value in params.items():
        if key in ("id", "object", "expand", "created", "livemode") or key not in props:
            continue
        prop = props[key]
        if key == "metadata" and isinstance(value, (dict, str)):
            current = obj.get("metadata")
            if value == "" or not isinstance(value, dict):
                obj["metadata"] = {}
                continue
            merged_meta = dict(current) if isinstance(current, dict) else {}
            for k, v in value.items():
                if v == "":
                    merged_meta.pop(k, None)
                elif isinstance(v, (str, int, float, bool)):
                    merged_meta[k] = v if not isinstance(v, bool) else str(v).lower()
            obj["metadata"] = merged_meta
            continue
        if value == "":
            if "null" in types(merged(spec, prop)) or _nullable_any(spec, prop):
                obj[key] = None
            continue
        candidate = value
        if isinstance(value, dict) and isinstance(obj.get(key), dict):
            candidate = {**obj[key], **value}
        if fits(candidate, prop):
            obj[key] = candidate
    return obj


def _nullable_any(spec: Spec, schema: Any) -> bool:
    node = spec.resolve(schema)
    return isinstance(node, dict) and node.get("nullable") is True


def action_status(spec: Spec, verb: str, schema: Any) -> str | None:
    """The status an action leaves its object in: ``cancel`` -> ``canceled``."""
    props = merged(spec, schema).get("properties") or {}
    status = merged(spec, props.get("status"))
    enum = status.get("enum") if isinstance(status, dict) else None
    if not isinstance(enum, list):
        return None
    for candidate in VERB_STATUS.get(verb, ()):
        if candidate in enum:
            return candidate
    return None


__all__ = ["Collection", "action_status", "apply_params", "collections", "normalize",
           "world_collection"]
