"""Derive an OpenAPI 3 supplement to Stripe's 2024-04-10 description from the installed
``stripe`` SDK: the operations the SDK calls that the description lacks, with request and
response schemas, so guard answers them as it answers the description's own operations.

stripe-python is generated from Stripe's newer OpenAPI descriptions, and its generated code
still says most of what they said:

- the services (``*_service.py``) name each call: ``self._request("post",
  "/v1/billing/alerts/{id}/activate".format(...), params=params)``, with the parameters'
  ``TypedDict`` and the answer's class in their annotations (read here with ``ast``);
- the parameter ``TypedDict``s (``stripe/params/``) give every parameter, its type,
  ``Literal`` enums, nested objects and arrays, and which are ``NotRequired``;
- the resource classes give every field of the answer (``Optional``: nullable), ``Literal``
  enums, nested classes, the ``object`` literal (``OBJECT_NAME``), ``ExpandableField``
  references and ``ListObject`` fields;
- the docstrings under parameters and fields say which strings are RFC 3339 times.

Resources the 2024-04-10 description already has (``customer``, ``invoice``, ...) are
referenced, not redefined: its shapes stay authoritative. What the SDK cannot say (ids'
prefixes, string lengths, other formats) is left out. Operations that
cannot be derived are printed with the reason, and listed in the output's
``x-underived``.

    .venv/bin/python tools/stripe_sdk_supplement.py [--out PATH] [--check]

``--check`` compares with the vendored file and exits 1 when it differs (run it after
upgrading stripe-python). The output is deterministic: sorted keys, gzip without a time.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import importlib
import json
import re
import sys
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any, ForwardRef, Literal, NotRequired, Required, Union

import stripe
import typing_extensions
from stripe._request_options import RequestOptions
from stripe._stripe_object import StripeObject

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "guard" / "providers" / "stripe" / "spec" / "spec3.json.gz"
OUT = ROOT / "guard" / "providers" / "stripe" / "spec" / "sdk3.json.gz"
PACKAGE = Path(stripe.__file__).parent
_REQUESTS = ("_request", "_request_stream")
_OPTIONS = frozenset(RequestOptions.__annotations__)
_ID = {"maxLength": 5000, "type": "string"}
_ERROR = {"$ref": "#/components/schemas/error"}
_PARAM = re.compile(r"\{([^{}]+)\}")


# Id prefixes the SDK does not carry, as Stripe's API reference shows its ids (the
# resources it has no fixture for in fixtures3.json, or only a placeholder ``obj_123``).
ID_PREFIXES = {
    "billing.alert": "alrt_", "billing.credit_balance_transaction": "cbtxn_",
    "billing.credit_grant": "credgr_", "invoice_payment": "inpay_",
    "invoice_rendering_template": "inrtem_", "v2.core.event_destination": "ed_",
    "v2.core.event": "evt_", "v2.core.account": "acct_", "v2.core.account_person": "person_",
    "v2.billing.meter_event_session": "mes_", "v2.billing.meter_event_adjustment": "mea_",
    "v2.money_management.financial_account": "fa_",
    "v2.money_management.outbound_payment": "obp_",
    "v2.money_management.inbound_transfer": "ibt_",
}


# The SDK's base addresses (stripe/_base_address.py) as hosts.
BASE_HOSTS = {"api": "api.stripe.com", "meter_events": "meter-events.stripe.com",
              "files": "files.stripe.com", "connect": "connect.stripe.com"}


class Underivable(Exception):
    """An operation whose shape the SDK does not say."""


def shape(path: str) -> str:
    return _PARAM.sub("{}", path)


# -- reading the services ------------------------------------------------------------------

class Call(typing.NamedTuple):
    method: str
    path: str
    params: str | None  # the TypedDict's name in the service module
    returns: str  # the answer's annotation text
    module: str  # the service module
    base: str  # base_address: api | meter_events | files | connect
    stream: bool


def service_calls() -> list[Call]:
    """Every ``_request`` of every generated service method, sync ones only."""
    out: list[Call] = []
    for source in sorted(PACKAGE.rglob("*_service.py")):
        rel = source.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                call = _request_in(fn)
                if call is None:
                    continue
                method, path, base, stream = call
                out.append(Call(method, path, _params_name(fn), _text(fn.returns), module,
                                base, stream))
    return out


def _request_in(fn: ast.FunctionDef) -> tuple[str, str, str, bool] | None:
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _REQUESTS and len(node.args) >= 2):
            continue
        method, path = node.args[0], node.args[1]
        if isinstance(path, ast.Call) and isinstance(path.func, ast.Attribute) \
                and path.func.attr == "format":
            path = path.func.value
        if not (isinstance(method, ast.Constant) and isinstance(path, ast.Constant)
                and isinstance(path.value, str) and path.value.startswith("/v")):
            continue
        base = next((str(k.value.value) for k in node.keywords if k.arg == "base_address"
                     and isinstance(k.value, ast.Constant)), "api")
        return (str(method.value).upper(), path.value, base,
                node.func.attr == "_request_stream")
    return None


def _params_name(fn: ast.FunctionDef) -> str | None:
    for arg in [*fn.args.args, *fn.args.kwonlyargs]:
        if arg.arg == "params" and arg.annotation is not None:
            text = _text(arg.annotation)
            m = re.search(r"['\"]?([A-Za-z_][A-Za-z0-9_]*Params)['\"]?", text)
            return m.group(1) if m else None
    return None


def _text(node: ast.expr | None) -> str:
    if node is None:
        return "None"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node)


_NAMESPACES: dict[str, dict[str, Any]] = {}


def namespace(module_name: str) -> dict[str, Any]:
    """The module's globals plus what it imports only for type checkers."""
    ns = _NAMESPACES.get(module_name)
    if ns is not None:
        return ns
    module = importlib.import_module(module_name)
    ns = dict(vars(module))
    ns.update({k: getattr(typing, k) for k in ("Any", "Dict", "List", "Optional", "Union")})
    ns.update(Literal=typing_extensions.Literal, NotRequired=typing_extensions.NotRequired)
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom) and imp.module:
                    for alias in imp.names:
                        target = importlib.import_module(imp.module)
                        ns[alias.asname or alias.name] = getattr(target, alias.name)
    _NAMESPACES[module_name] = ns
    return ns


def evaluate(annotation: Any, module_name: str) -> Any:
    """A forward reference (``"Customer"``, ``ForwardRef('Dict[str, str]|...')``) as a type;
    the text is the SDK's own generated code, evaluated in its module's namespace."""
    if isinstance(annotation, ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        return eval(annotation, namespace(module_name))  # noqa: S307 (the SDK's annotations)
    return annotation


# -- types to schemas -------------------------------------------------------------------------

def _origin(tp: Any) -> Any:
    return typing.get_origin(tp)


def _is_union(tp: Any) -> bool:
    return _origin(tp) in (Union, types.UnionType)


def _is_literal(tp: Any) -> bool:
    return _origin(tp) in (Literal, typing_extensions.Literal)


def _literal_schema(values: tuple[Any, ...]) -> dict[str, Any]:
    if all(isinstance(v, bool) for v in values):
        return {"type": "boolean", "enum": list(values)}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return {"type": "integer", "enum": list(values)}
    return {"type": "string", "enum": [str(v) for v in values]}


class Deriver:
    """Schemas for parameter ``TypedDict``s and resource classes; components for resources."""

    def __init__(self, spec_schemas: dict[str, Any]) -> None:
        self.spec_schemas = spec_schemas
        self.components: dict[str, Any] = {}
        self._making: set[str] = set()

    # parameters

    def params(self, td: Any, module: str, stack: tuple[Any, ...] = ()) -> dict[str, Any]:
        """A parameter ``TypedDict`` as an object schema (``additionalProperties: false``)."""
        if td in stack:
            return {"type": "object"}
        hints = _annotations(td)
        required = sorted(k for k in getattr(td, "__required_keys__", ()) if k not in _OPTIONS)
        props = {k: with_format(self.param_type(v, td.__module__, (*stack, td)),
                                field_doc(td, k))
                 for k, v in hints.items() if k not in _OPTIONS}
        schema: dict[str, Any] = {"type": "object", "properties": props,
                                  "additionalProperties": False,
                                  "title": _snake(td.__name__.removeprefix("_"))}
        if required:
            schema["required"] = required
        return schema

    def param_type(self, tp: Any, module: str, stack: tuple[Any, ...]) -> dict[str, Any]:
        tp = evaluate(tp, module)
        if _origin(tp) in (NotRequired, Required, typing_extensions.NotRequired,
                           typing_extensions.Required):
            return self.param_type(typing.get_args(tp)[0], module, stack)
        if _is_union(tp):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            literals = [a for a in args if _is_literal(a)]
            others = [a for a in args if not _is_literal(a)]
            # Union[Literal["a", "b"], str]: an open enum, as Stripe's x-stripeBypassValidation
            if literals and others == [str]:
                enum = _literal_schema(sum((typing.get_args(a) for a in literals), ()))
                return {**enum, "x-stripeBypassValidation": True}
            alts = [self.param_type(a, module, stack) for a in args]
            return alts[0] if len(alts) == 1 else {"anyOf": alts}
        if _is_literal(tp):
            return _literal_schema(typing.get_args(tp))
        if tp is str:
            return {"type": "string", "maxLength": 5000}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is Decimal:
            return {"type": "string", "format": "decimal"}
        if tp is Any or tp is object:
            return {}
        origin = _origin(tp)
        if origin in (list, typing.List):  # noqa: UP006
            return {"type": "array", "items": self.param_type(typing.get_args(tp)[0], module,
                                                               stack)}
        if origin in (dict, typing.Dict):  # noqa: UP006
            return {"type": "object", "additionalProperties":
                    self.param_type(typing.get_args(tp)[1], module, stack)}
        if isinstance(origin, type) and issubclass(origin, StripeObject):  # UntypedStripeObject
            args = typing.get_args(tp)
            return {"type": "object", "additionalProperties":
                    self.param_type(args[0], module, stack) if args else {}}
        if isinstance(tp, type) and typing_extensions.is_typeddict(tp):
            return self.params(tp, module, stack)
        raise Underivable(f"parameter type {tp!r} in {module}")

    # resources

    def answer(self, tp: Any, module: str) -> dict[str, Any]:
        """The schema of what a service method returns."""
        tp = evaluate(tp, module)
        origin = _origin(tp)
        if isinstance(origin, type) and origin.__name__ == "ListObject":
            item = self.field(typing.get_args(tp)[0], module, ())
            if origin.__module__.startswith("stripe.v2"):
                return _v2_list(item)
            return _v1_list(item)
        if isinstance(tp, type) and issubclass(tp, StripeObject):
            return self.field(tp, module, ())
        if tp is None or tp is type(None):
            # the SDK reads no answer (the meter event stream): Stripe's empty object
            return {"type": "object", "properties": {}, "title": "Empty"}
        raise Underivable(f"answer type {tp!r}")

    def field(self, tp: Any, module: str, stack: tuple[Any, ...]) -> dict[str, Any]:
        tp = evaluate(tp, module)
        if _is_union(tp):
            args = list(typing.get_args(tp))
            nullable = type(None) in args
            args = [a for a in args if a is not type(None)]
            literals = [a for a in args if _is_literal(a)]
            others = [a for a in args if not _is_literal(a)]
            if literals and others == [str]:
                out = _literal_schema(sum((typing.get_args(a) for a in literals), ()))
            elif len(args) == 2 and args[0] is str:  # ExpandableField[X] = Union[str, X]
                target = self.field(args[1], module, stack)
                out = {"anyOf": [dict(_ID), target],
                       "x-expansionResources": {"oneOf": [target]}}
            else:
                alts = [self.field(a, module, stack) for a in args]
                out = alts[0] if len(alts) == 1 else {"anyOf": alts}
            if nullable:
                out = {**out, "nullable": True} if "$ref" not in out else {
                    "anyOf": [out], "nullable": True}
            return out
        if _is_literal(tp):
            return _literal_schema(typing.get_args(tp))
        if tp is str:
            return {"type": "string", "maxLength": 5000}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is Decimal:
            return {"type": "string", "format": "decimal"}
        if tp is Any or tp is object:
            return {}
        origin = _origin(tp)
        if origin in (list, typing.List):  # noqa: UP006
            return {"type": "array", "items": self.field(typing.get_args(tp)[0], module, stack)}
        if origin in (dict, typing.Dict):  # noqa: UP006
            return {"type": "object", "additionalProperties":
                    self.field(typing.get_args(tp)[1], module, stack)}
        if isinstance(origin, type) and origin.__name__ == "ListObject":
            item = self.field(typing.get_args(tp)[0], module, stack)
            return _v2_list(item) if origin.__module__.startswith("stripe.v2") \
                else _v1_list(item)
        if isinstance(origin, type) and issubclass(origin, StripeObject):
            args = typing.get_args(tp)
            return {"type": "object", "additionalProperties":
                    self.field(args[0], module, stack) if args else {}}
        if tp is StripeObject:
            return {"type": "object"}
        if isinstance(tp, type) and issubclass(tp, StripeObject):
            name = _object_name(tp)
            if name is not None:
                return self.resource(tp, name)
            return self.inline(tp, stack)
        raise Underivable(f"field type {tp!r} in {module}")

    def resource(self, cls: type, name: str) -> dict[str, Any]:
        """A ``$ref`` to the resource's component: the description's where it has one."""
        ref = {"$ref": f"#/components/schemas/{name}"}
        if name in self.spec_schemas or name in self.components or name in self._making:
            return ref
        self._making.add(name)
        try:
            schema = self.inline(cls, ())
        finally:
            self._making.discard(name)
        schema["x-resourceId"] = name
        prefix = ID_PREFIXES.get(name)
        if prefix is not None and "id" in schema["properties"]:
            schema["properties"]["id"] = {**schema["properties"]["id"],
                                          "example": prefix + "61SDKdErIvEdExAmPlE01"}
        self.components[name] = schema
        return ref

    def inline(self, cls: type, stack: tuple[Any, ...]) -> dict[str, Any]:
        if cls in stack or len(stack) > 12:
            return {"type": "object"}
        props: dict[str, Any] = {}
        required: list[str] = []
        for key, tp in _annotations(cls).items():
            if key.startswith("_") or _origin(tp) is typing.ClassVar:
                continue
            props[key] = with_format(self.field(tp, cls.__module__, (*stack, cls)),
                                     field_doc(cls, key))
            if cls.__module__.startswith("stripe.v2") and _is_time(key) and \
                    props[key].get("type") == "string" and "enum" not in props[key]:
                props[key] = {**props[key], "format": "date-time"}  # v2 times: RFC 3339
            required.append(key)
        name = _object_name(cls)
        if name is not None:
            props["object"] = {"type": "string", "enum": [name]}
        schema: dict[str, Any] = {"type": "object", "properties": props,
                                  "title": cls.__qualname__.replace(".", "")}
        if required:
            schema["required"] = sorted(set(required) | ({"object"} if name else set()))
        expandable = sorted(k for k, v in props.items() if "x-expansionResources" in v
                            or "x-expansionResources" in (v.get("anyOf") or [{}])[0])
        if expandable:
            schema["x-expandableFields"] = expandable
        return schema


_DOCS: dict[str, dict[tuple[str, str], str]] = {}


def field_doc(cls: type, key: str) -> str:
    """The docstring the generated code puts under a field (``x: str`` then ``\"\"\"...\"\"\"``),
    read with ``ast`` from the class's module; for the class or a base declaring it."""
    for base in cls.__mro__:
        module = getattr(base, "__module__", "")
        if not module.startswith("stripe"):
            continue
        docs = _DOCS.get(module)
        if docs is None:
            docs = _DOCS[module] = _module_docs(module)
        doc = docs.get((base.__qualname__, key))
        if doc is not None:
            return doc
    return ""


def _module_docs(module: str) -> dict[tuple[str, str], str]:
    source = Path(str(importlib.import_module(module).__file__)).read_text(encoding="utf-8")
    out: dict[tuple[str, str], str] = {}

    def visit(node: ast.ClassDef, prefix: str) -> None:
        qual = f"{prefix}{node.name}"
        body = node.body
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.ClassDef):
                visit(stmt, qual + ".")
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and \
                    i + 1 < len(body) and isinstance(body[i + 1], ast.Expr):
                value = body[i + 1].value  # type: ignore[attr-defined]
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    out[(qual, stmt.target.id)] = value.value

    for top in ast.parse(source).body:
        if isinstance(top, ast.ClassDef):
            visit(top, "")
    return out


def with_format(schema: dict[str, Any], doc: str) -> dict[str, Any]:
    """What a field's docstring says of its format: ``RFC 3339`` times (v2), e-mails."""
    if schema.get("type") != "string" or "enum" in schema or "format" in schema:
        return schema
    if "RFC 3339" in doc:
        return {**schema, "format": "date-time"}
    return schema


def _annotations(cls: type) -> dict[str, Any]:
    """The class's own annotations and its bases' (TypedDicts collect them already)."""
    out: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        if base in (object, StripeObject, dict) or base.__module__ == "typing":
            continue
        out.update(vars(base).get("__annotations__", {}))
    return out


def _is_time(key: str) -> bool:
    return key in ("created", "updated", "expires", "occurred") or key.endswith(
        ("_at", "_time")) and not key.endswith("_by_at")


def _object_name(cls: type) -> str | None:
    name = vars(cls).get("OBJECT_NAME")
    return name if isinstance(name, str) and name not in ("list", "search_result") else None


def _v1_list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "title": "List", "required": ["data", "has_more", "object", "url"],
            "properties": {"data": {"type": "array", "items": item},
                           "has_more": {"type": "boolean"},
                           "object": {"type": "string", "enum": ["list"]},
                           "url": {"type": "string", "maxLength": 5000}},
            "x-expandableFields": ["data"]}


def _v2_list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "title": "V2List", "required": ["data", "next_page_url",
                                                             "previous_page_url"],
            "properties": {"data": {"type": "array", "items": item},
                           "next_page_url": {"type": "string", "nullable": True},
                           "previous_page_url": {"type": "string", "nullable": True}},
            "x-stripeListShape": "v2"}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


# -- operations ---------------------------------------------------------------------------------

def operation_id(method: str, path: str) -> str:
    """spec3's style: ``GetBillingAlertsId``; v2 operations say so: ``GetV2CoreEvents``."""
    words = [method.capitalize()] + (["V2"] if path.startswith("/v2/") else [])
    for seg in path.split("/")[2:]:
        seg = seg.strip("{}")
        words.extend(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", seg) if w)
    return "".join(words)


def operation(d: Deriver, call: Call) -> dict[str, Any]:
    params_schema: dict[str, Any] = {"type": "object", "properties": {},
                                     "additionalProperties": False}
    if call.params is not None:
        td = namespace(call.module).get(call.params)
        if td is None:
            raise Underivable(f"{call.params} is not importable from {call.module}")
        params_schema = d.params(td, call.module)
    answer = d.answer(call.returns, call.module)
    v2 = call.path.startswith("/v2/")
    parameters: list[dict[str, Any]] = [
        {"in": "path", "name": name, "required": True, "schema": dict(_ID), "style": "simple"}
        for name in _PARAM.findall(call.path)]
    op: dict[str, Any] = {
        "operationId": operation_id(call.method, call.path),
        "description": f"Derived from stripe-python {stripe.VERSION} ({call.module}).",
        "responses": {"200": {"description": "Successful response.", "content": {
            "application/json": {"schema": answer}}},
            "default": {"description": "Error response.",
                        "content": {"application/json": {"schema": _ERROR}}}},
    }
    if call.method in ("GET", "DELETE"):
        required = set(params_schema.get("required") or ())
        for name, schema in params_schema["properties"].items():
            deep = schema.get("type") in ("object", "array") or "anyOf" in schema
            parameters.append({"in": "query", "name": name, "required": name in required,
                               "schema": schema, "style": "deepObject" if deep else "form",
                               "explode": True})
    else:
        media = "application/json" if v2 else "application/x-www-form-urlencoded"
        op["requestBody"] = {"required": bool(params_schema.get("required")),
                             "content": {media: {"schema": params_schema}}}
    if v2 and call.method == "GET" and answer.get("x-stripeListShape") == "v2" and \
            "page" not in params_schema["properties"]:
        # v2 lists page by following next_page_url, whose query carries an opaque page token
        parameters.append({"in": "query", "name": "page", "required": False,
                           "schema": dict(_ID), "style": "form", "explode": True})
    if parameters:
        op["parameters"] = parameters
    if call.base != "api":
        op["x-stripeBaseAddress"] = call.base
        op["x-guardHost"] = BASE_HOSTS[call.base]
    return op


def derive(spec: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    known = {(m.upper(), shape(p)) for p, ops in spec["paths"].items() for m in ops}
    d = Deriver(spec["components"]["schemas"])
    paths: dict[str, dict[str, Any]] = {}
    underived: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for call in service_calls():
        key = (call.method, shape(call.path))
        if key in known or key in seen:
            continue
        seen.add(key)
        try:
            op = operation(d, call)
        except Underivable as e:
            underived.append((call.method, call.path, str(e)))
            continue
        paths.setdefault(call.path, {})[call.method.lower()] = op
    _deleted_objects(paths)
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Stripe API: operations stripe-python knows beyond spec3 2024-04-10",
                 "version": str(stripe.api_version),
                 "description": "Derived by guard's tools/stripe_sdk_supplement.py from the "
                 f"generated code of stripe-python {stripe.VERSION} (MIT License, "
                 "Copyright (c) 2010-2018 Stripe; LICENSE.stripe-python); $refs to "
                 "components it does not define name those of spec3.json.gz beside it.",
                 "x-stripePython": stripe.VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(d.components.items()))},
        "x-underived": [{"method": m, "path": p, "reason": r} for m, p, r in underived],
    }
    return doc, underived


def _deleted_objects(paths: dict[str, dict[str, Any]]) -> None:
    """A v2 ``DELETE`` answers ``DeletedObject`` (``id``, ``object``): its ``object`` is
    the type the item's ``GET`` answers."""
    for item in paths.values():
        delete, get = item.get("delete"), item.get("get")
        if delete is None or get is None:
            continue
        answer = delete["responses"]["200"]["content"]["application/json"]["schema"]
        ref = get["responses"]["200"]["content"]["application/json"]["schema"].get("$ref")
        if answer.get("title") == "DeletedObject" and isinstance(ref, str):
            answer["properties"]["object"] = {"type": "string",
                                              "enum": [ref.rsplit("/", 1)[-1]]}


def encode(doc: dict[str, Any]) -> bytes:
    text = json.dumps(doc, sort_keys=True, indent=None, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), mtime=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when the vendored supplement differs from what this SDK gives")
    args = ap.parse_args(argv)
    spec = json.loads(gzip.decompress(SPEC.read_bytes()))
    doc, underived = derive(spec)
    ops = sum(len(v) for v in doc["paths"].values())
    v2 = sum(len(v) for p, v in doc["paths"].items() if p.startswith("/v2/"))
    print(f"stripe-python {stripe.VERSION} (API {stripe.api_version}): derived {ops} operations "
          f"({ops - v2} under /v1, {v2} under /v2), {len(doc['components']['schemas'])} "
          f"resource schemas; {len(underived)} not derived")
    for method, path, reason in underived:
        print(f"  not derived: {method} {path}: {reason}")
    data = encode(doc)
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        print("vendored supplement is up to date" if same else
              f"{args.out} differs from what stripe-python {stripe.VERSION} gives")
        return 0 if same else 1
    args.out.write_bytes(data)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
