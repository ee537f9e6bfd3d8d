"""The operations of a description, compiled once: parameters, body, success response, and
the part each plays in the API's state (create, list, retrieve, update, delete, ...), read
from the shape of the paths.

The roles follow REST conventions, as Stripe and most APIs use them:

- ``/things`` with an item path ``/things/{id}`` beside it is a collection: ``POST`` creates,
  ``GET`` lists (when the answer is list-shaped);
- ``/things/{id}``: ``GET`` retrieves, ``POST``/``PUT``/``PATCH`` update, ``DELETE`` deletes;
- ``/things/search`` (a ``GET`` answering a list): search;
- ``/things/{id}/verb`` without an item path below it: an action on the item, answered
  with the item when it answers the item's type;
- everything else answers from the schema alone (no state).

>>> ops = {(o.method, o.path): o for o in compile_operations(_demo_spec())}
>>> [ops[k].role for k in [("POST", "/pets"), ("GET", "/pets"), ("GET", "/pets/{petId}"),
...                         ("DELETE", "/pets/{petId}"), ("POST", "/pets/{petId}/feed")]]
['create', 'list', 'retrieve', 'delete', 'action']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from guard.openapi.schema import list_shape
from guard.openapi.spec import Spec

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"

_PARAM = re.compile(r"^\{([^{}]+)\}$")
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query | header | cookie
    required: bool
    schema: Any
    style: str
    explode: bool


@dataclass
class Operation:
    """One operation, ready to route, validate and answer."""

    spec: Spec
    method: str
    path: str
    operation_id: str
    params: tuple[Param, ...]
    body: dict[str, Any] | None  # media type -> schema
    body_required: bool
    status: int  # the success status it answers
    schema: Any  # the success response schema (None: no body)
    example: Any  # the success response's example, when the description gives one
    media_type: str | None
    role: str = "none"  # create | list | search | retrieve | update | delete | action | none
    collection: str | None = None  # normalized collection path, e.g. /v1/customers/{}/tax_ids
    item_param: str | None = None  # the path parameter naming the item
    parents: tuple[tuple[str, str], ...] = ()  # (path parameter, parent collection path)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def segments(self) -> list[str]:
        return [s for s in self.path.split("/") if s]

    @property
    def slug(self) -> str:
        """A stable rule-id part: ``PostCustomersCustomer`` -> ``post-customers-customer``."""
        text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", self.operation_id).lower()
        return _SLUG.sub("-", text).strip("-") or "op"

    @property
    def form_body(self) -> bool:
        return self.body is not None and (FORM in self.body or MULTIPART in self.body)

    @property
    def query_params(self) -> dict[str, Param]:
        return {p.name: p for p in self.params if p.where == "query"}


def normalize(path: str) -> str:
    """``/v1/customers/{customer}/tax_ids/{id}`` -> ``/v1/customers/{}/tax_ids/{}``."""
    return "/".join("{}" if _PARAM.match(s) else s for s in path.split("/"))


def compile_operations(spec: Spec) -> list[Operation]:
    """Every operation of ``spec`` with its role inferred. Raises ``ValueError`` naming the
    operation for a description it cannot use."""
    ops = [_operation(spec, m, p, op, item) for m, p, op, item in spec.operations()]
    items = {normalize(o.path) for o in ops if _is_param(o.segments[-1:])}
    for o in ops:
        _infer_role(o, items)
    return ops


def _is_param(segments: list[str]) -> bool:
    return bool(segments) and _PARAM.match(segments[-1]) is not None


def _operation(spec: Spec, method: str, path: str, op: dict[str, Any],
               item: dict[str, Any]) -> Operation:
    params: dict[tuple[str, str], Param] = {}
    for raw in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        p = spec.resolve(raw)
        if not isinstance(p, dict) or "name" not in p or "in" not in p:
            continue
        where = str(p["in"])
        style = str(p.get("style") or ("form" if where in ("query", "cookie") else "simple"))
        explode = bool(p.get("explode", style == "form"))
        params[(where, str(p["name"]))] = Param(str(p["name"]), where,
                                                bool(p.get("required", where == "path")),
                                                p.get("schema") or {}, style, explode)
    body: dict[str, Any] | None = None
    body_required = False
    if "requestBody" in op:
        rb = spec.resolve(op["requestBody"])
        body = {str(k).split(";")[0].strip().lower(): (v or {}).get("schema") or {}
                for k, v in (rb.get("content") or {}).items()}
        body_required = bool(rb.get("required", False))
    status, schema, example, media = _success(spec, op)
    operation_id = str(op.get("operationId") or f"{method} {path}")
    return Operation(spec, method, path, operation_id, tuple(params.values()), body,
                     body_required, status, schema, example, media, raw=op)


def _success(spec: Spec, op: dict[str, Any]) -> tuple[int, Any, Any, str | None]:
    responses = op.get("responses") or {}
    codes = sorted((str(c) for c in responses), key=lambda c: (not c.startswith("2"), c))
    for code in codes:
        if not (code.startswith("2") or code == "default"):
            continue
        resp = spec.resolve(responses[code])
        status = int(code) if (code.isascii() and code.isdigit()) else 200
        content = resp.get("content") or {}
        if not content:
            return status, None, None, None
        media = next((m for m in content if "json" in m), next(iter(content)))
        mt = content[media] or {}
        example = mt.get("example")
        if example is None and isinstance(mt.get("examples"), dict) and mt["examples"]:
            first = spec.resolve(next(iter(mt["examples"].values())))
            example = first.get("value") if isinstance(first, dict) else None
        return status, mt.get("schema"), example, media
    return 200, None, None, None


def _infer_role(o: Operation, items: set[str]) -> None:
    segs = o.segments
    if not segs:
        return
    norm = normalize(o.path)
    parents: list[tuple[str, str]] = []
    for i, s in enumerate(segs):
        m = _PARAM.match(s)
        if m and i > 0:
            parents.append((m.group(1), "/" + "/".join(normalize("/".join(segs[:i])).split("/"))))
    last = _PARAM.match(segs[-1])
    if last:
        o.item_param = last.group(1)
        o.collection = normalize("/" + "/".join(segs[:-1]))
        o.parents = tuple(parents[:-1])
        o.role = {"GET": "retrieve", "POST": "update", "PUT": "update", "PATCH": "update",
                  "DELETE": "delete"}.get(o.method, "none")
        return
    if norm + "/{}" in items:
        o.collection = norm
        o.parents = tuple(parents)
        if o.method == "POST":
            o.role = "create"
        elif o.method == "GET":
            o.role = "list"
        return
    if len(segs) >= 2 and segs[-1] == "search" and o.method == "GET":
        parent = normalize("/" + "/".join(segs[:-1]))
        if parent + "/{}" in items:
            o.collection, o.role, o.parents = parent, "search", tuple(parents)
        return
    if len(segs) >= 2 and _PARAM.match(segs[-2]) and o.method == "POST":
        o.item_param = _PARAM.match(segs[-2]).group(1)  # type: ignore[union-attr]
        o.collection = normalize("/" + "/".join(segs[:-2]))
        o.parents = tuple(parents[:-1])
        o.role = "action"
        return
    if o.method == "GET" and o.schema is not None and list_shape(o.spec, o.schema) is not None:
        o.role = "list"  # a list without an item path (its objects may live elsewhere)
        o.collection = norm
        o.parents = tuple(parents)


def _demo_spec() -> Spec:
    from pathlib import Path

    ok = {"200": {"description": "ok"}}
    doc = {"openapi": "3.0.3", "info": {}, "paths": {
        "/pets": {"get": {"responses": ok}, "post": {"responses": ok}},
        "/pets/{petId}": {"get": {"responses": ok}, "delete": {"responses": ok}},
        "/pets/{petId}/feed": {"post": {"responses": ok}},
    }}
    return Spec(Path("demo.json"), doc, "3.0.3")
