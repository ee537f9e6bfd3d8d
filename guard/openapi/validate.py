"""Check a request against its operation: path, query and body parameters, for JSON bodies
and for forms (Stripe's ``a[b][c]`` nesting and arrays, every value a string until the
schema gives it a type).

The first problem found is raised as :class:`Invalid` carrying an :class:`Issue`; the pack's
error shape (:mod:`guard.openapi.problems`) turns it into the provider's error body.
Messages follow Stripe's wording, which reads well for any API.

Request values are only compared and converted here: nothing from the request is ever
used as a template or a pattern source (``pattern`` comes from the description).

>>> from guard.openapi.operations import _demo_spec
>>> v = Validator(_demo_spec(), closed=True)
>>> v.value("12", {"type": "integer"}, "amount", form=True)
12
>>> v.value("x", {"type": "integer"}, "amount", form=True)
Traceback (most recent call last):
...
guard.openapi.validate.Invalid: Invalid integer: x
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from uuid import UUID

from guard.multipart import UploadedFile
from guard.openapi.operations import FORM, JSON, MULTIPART, Operation
from guard.openapi.schema import merged, types
from guard.openapi.spec import Spec
from guard.request import Request

_INT = re.compile(r"^-?[0-9]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_DEPTH = 32
MAX_STEPS = 50_000  # schema nodes visited for one request: bounds the work a request can cause


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""Stands for any valid value (the Stripe measurement puts it where a field is missing only
because Stripe's newer object shape dropped it)."""


@dataclass(frozen=True)
class Issue:
    """What is wrong, with the parameter named as the client spells it."""

    kind: str  # unknown | missing | empty | invalid | exclusive | body
    param: str | None
    message: str
    code: str | None = None


class Invalid(Exception):  # noqa: N818 (it is an answer, not a failure of guard)
    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


@dataclass(frozen=True)
class Validated:
    """The request's parameters, converted to the types the description gives them."""

    path: dict[str, str]
    query: dict[str, Any]
    body: Any
    form: bool


class Validator:
    """Validates values against schemas of one description.

    ``closed``: objects that list ``properties`` accept no others unless they say
    ``additionalProperties`` (Stripe rejects unknown nested parameters although its
    description leaves them open). ``bypass`` honours ``x-stripeBypassValidation`` enums.
    """

    def __init__(self, spec: Spec, *, closed: bool = False) -> None:
        self.spec = spec
        self.closed = closed
        self._steps = 0
        self._active: set[tuple[int, int]] = set()  # (schema, value) pairs being checked

    def request(self, op: Operation, req: Request, captures: dict[str, str]) -> Validated:
        path = {k: v for k, v in captures.items()}
        for p in op.params:
            if p.where == "path" and p.name in path:
                self.value(path[p.name], p.schema, p.name, form=True)
        query = self._params(op, req.query_map)
        body: Any = None
        form = False
        if op.body is not None:
            body, form = self._body(op, req)
        elif req.method in ("POST", "PUT", "PATCH") and req.form_pairs and self.closed:
            # Stripe: parameters sent to an operation that takes none are unknown
            first = next(iter(req.form))
            raise Invalid(_unknown(first))
        return Validated(path, query, body, form)

    def _params(self, op: Operation, given: dict[str, Any]) -> dict[str, Any]:
        declared = op.query_params
        out: dict[str, Any] = {}
        for key, value in given.items():
            p = declared.get(key)
            if p is None:
                raise Invalid(_unknown(key))
            out[key] = self.value(value, p.schema, key, form=True)
        for p in declared.values():
            if p.required and p.name not in given:
                raise Invalid(_missing(p.name))
        return out

    def _body(self, op: Operation, req: Request) -> tuple[Any, bool]:
        assert op.body is not None
        ct = req.content_type
        has_form = FORM in op.body or MULTIPART in op.body
        if ct in (FORM, MULTIPART) and has_form:
            schema = op.body.get(ct, op.body.get(FORM, op.body.get(MULTIPART)))
            data: dict[str, Any] = dict(req.form)
            files = {k for k, v in req.multipart_fields if isinstance(v, UploadedFile)}
            value = self._form_root(data, files, schema)
            return value, True
        if not req.body:
            if op.body_required:
                raise Invalid(Issue("body", None, "This operation needs a request body.",
                                    None))
            if has_form:
                return self._form_root({}, set(), op.body.get(FORM) or op.body.get(MULTIPART)
                                       ), True
            return None, False
        json_schema = op.body.get(JSON) or next(
            (s for m, s in op.body.items() if m.endswith("+json")), None)
        if json_schema is None:
            if has_form:
                raise Invalid(Issue("body", None, f"Invalid request: send the body as "
                                    f"{FORM} (got {ct or 'no content type'}).", None))
            return req.body, False
        if req.json is None:
            raise Invalid(Issue("body", None, "Invalid request: the body is not valid JSON.",
                                None))
        return self.value(req.json, json_schema, "", form=False), False

    def _form_root(self, data: dict[str, Any], files: set[str], schema: Any) -> Any:
        for name in files:
            data.setdefault(name, "")
        return self.value(data, schema, "", form=True, files=files)

    # values

    def value(self, value: Any, schema: Any, name: str, *, form: bool,
              files: set[str] | None = None, depth: int = 0) -> Any:
        if value is ANY:
            return value
        if depth == 0:
            self._steps = 0
        self._steps += 1
        if self._steps > MAX_STEPS:
            raise Invalid(Issue("invalid", name or None, "Invalid request: the parameters are "
                                "too complex to check.", None))
        if depth > MAX_DEPTH:
            raise Invalid(Issue("invalid", name or None, "Invalid request: parameters nested "
                                f"deeper than {MAX_DEPTH} levels.", None))
        node = merged(self.spec, schema)
        if value is None and node.get("nullable") is True:
            return None
        alts = node.get("anyOf") or node.get("oneOf")
        if isinstance(alts, list) and alts:
            return self._alternatives(value, alts, name, form, files, depth)
        if "not" in node:
            self._exclusive(value, node["not"], name)
        t = types(node)
        if value is None:
            if not t or "null" in t:
                return None
            raise Invalid(_invalid(name, f"Invalid {name or 'body'}: null is not allowed", None))
        if form and value == "" and "string" not in t and t:
            raise Invalid(Issue("empty", name or None, _empty_message(name),
                                "parameter_invalid_empty"))
        if "object" in t and isinstance(value, dict):
            return self._object(value, node, name, form, files, depth)
        if "array" in t and (isinstance(value, list) or (form and value == "")):
            items = node.get("items") or {}
            if value == "":
                return []
            return [self.value(v, items, f"{name}[{i}]" if form else f"{name}[{i}]",
                               form=form, depth=depth + 1) for i, v in enumerate(value)]
        if isinstance(value, (dict, list)) and t and not ({"object", "array"} & set(t)):
            what = "a hash" if isinstance(value, dict) else "an array"
            raise Invalid(_invalid(name, f"Invalid {_scalar(t)}: got {what}" if form
                                   else f"Invalid {name}: expected {_scalar(t)}", None))
        if "object" in t and not isinstance(value, dict):
            raise Invalid(_invalid(name, "Invalid hash" if form else
                                   f"Invalid {name}: expected an object" if name else
                                   "Invalid request: the body must be a JSON object.", None))
        if "array" in t and not isinstance(value, list):
            raise Invalid(_invalid(name, "Invalid array" if form else
                                   f"Invalid {name}: expected an array", None))
        return self._scalar(value, node, t, name, form, files)

    def _alternatives(self, value: Any, alts: list[Any], name: str, form: bool,
                      files: set[str] | None, depth: int) -> Any:
        errors: list[Invalid] = []
        for alt in alts:
            node = merged(self.spec, alt)
            if not form and not _kind_fits(value, node):
                errors.append(Invalid(_invalid(name, f"Invalid {name or 'body'}: expected "
                                               f"{_scalar(types(node))}", None)))
                continue
            key = (id(node), id(value))
            if key in self._active:  # a branch that leads back here without reading input
                continue
            self._active.add(key)
            try:
                return self.value(value, alt, name, form=form, files=files, depth=depth + 1)
            except Invalid as e:
                errors.append(e)
            finally:
                self._active.discard(key)
        if not errors:
            raise Invalid(_invalid(name, f"Invalid {name or 'body'}: matches no schema", None))
        # Report the problem of the branch that got furthest (named the deepest parameter).
        best = max(errors, key=lambda e: (len(e.issue.param or ""),
                                          e.issue.kind in ("unknown", "missing")))
        raise best

    def _object(self, value: dict[str, Any], node: dict[str, Any], name: str, form: bool,
                files: set[str] | None, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = node.get("properties") or {}
        extra = node.get("additionalProperties")
        closed = extra is False or (extra is None and self.closed and bool(props))
        out: dict[str, Any] = {}
        for key, v in value.items():
            child = _child(name, key, form)
            if key in props:
                if files and not name and key in files:
                    out[key] = v  # a file part of a multipart body
                    continue
                out[key] = self.value(v, props[key], child, form=form, depth=depth + 1)
            elif closed:
                raise Invalid(_unknown(child))
            elif isinstance(extra, dict):
                out[key] = self.value(v, extra, child, form=form, depth=depth + 1)
            else:
                out[key] = v
        for key in node.get("required") or []:
            if key not in value:
                raise Invalid(_missing(_child(name, key, form)))
        return out

    def _exclusive(self, value: Any, not_schema: Any, name: str) -> None:
        sub = self.spec.resolve(not_schema)
        req = sub.get("required") if isinstance(sub, dict) else None
        if isinstance(value, dict) and isinstance(req, list) and req and \
                all(r in value for r in req):
            listed = ", ".join(sorted(_child(name, r, True) for r in req))
            raise Invalid(Issue("exclusive", _child(name, sorted(req)[0], True),
                                f"You may only specify one of these parameters: {listed}.",
                                None))

    def _scalar(self, value: Any, node: dict[str, Any], t: tuple[str, ...], name: str,
                form: bool, files: set[str] | None) -> Any:
        fmt = node.get("format")
        kinds = [k for k in t if k != "null"] or ["any"]
        out: Any = value
        if kinds == ["any"]:
            pass
        elif "integer" in kinds and not ("string" in kinds and not _looks_int(value, form)):
            out = _integer(value, name, form)
        elif "number" in kinds and "string" not in kinds:
            out = _number(value, name, form)
        elif "boolean" in kinds and "string" not in kinds:
            out = _boolean(value, name, form)
        elif "string" in kinds:
            if not isinstance(value, str):
                if form or isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise Invalid(_invalid(name, f"Invalid string: {_show(value)}", None))
                raise Invalid(_invalid(name, f"Invalid {name}: expected a string", None))
            self._string(value, node, fmt, name)
        enum = node.get("enum")
        if isinstance(enum, list) and enum and out not in enum and \
                not node.get("x-stripeBypassValidation"):
            shown = [str(e) for e in enum if e != ""]
            if not shown:
                raise Invalid(_invalid(name, _empty_message(name), "parameter_invalid_empty"))
            listed = ", ".join(shown[:-1]) + f", or {shown[-1]}" if len(shown) > 1 else shown[0]
            raise Invalid(_invalid(name, f"Invalid {name}: must be one of {listed}", None))
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            low, high = node.get("minimum"), node.get("maximum")
            if isinstance(low, (int, float)) and out < low:
                raise Invalid(_invalid(name, f"This value must be greater than or equal to "
                                       f"{low}.", "parameter_invalid_integer"))
            if isinstance(high, (int, float)) and out > high:
                raise Invalid(_invalid(name, f"This value must be less than or equal to "
                                       f"{high}.", "parameter_invalid_integer"))
        return out

    def _string(self, value: str, node: dict[str, Any], fmt: Any, name: str) -> None:
        limit = node.get("maxLength")
        if isinstance(limit, int) and len(value) > limit:
            raise Invalid(_invalid(name, f"Invalid string: {_show(value)}; must be at most "
                                   f"{limit} characters", None))
        low = node.get("minLength")
        if isinstance(low, int) and len(value) < low:
            raise Invalid(_invalid(name, f"Invalid string: {_show(value)}; must be at least "
                                   f"{low} characters", None))
        pattern = node.get("pattern")
        if isinstance(pattern, str) and value != "":
            compiled = _pattern(pattern)
            if compiled is not None and not compiled.search(value):
                raise Invalid(_invalid(name, f"Invalid {name}: {_show(value)} does not match "
                                       "the expected format", None))
        checker = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if checker is not None and value != "" and not checker(value):
            if fmt == "email":
                raise Invalid(_invalid(name, f"Invalid email address: {_show(value)}",
                                       "email_invalid"))
            raise Invalid(_invalid(name, f"Invalid {name}: {_show(value)} is not a valid {fmt}",
                                   None))


def _kind_fits(value: Any, node: dict[str, Any]) -> bool:
    """Whether a JSON value's kind is one ``node`` allows (cheap, before trying a branch)."""
    t = types(node)
    if not t or "anyOf" in node or "oneOf" in node or "allOf" in node:
        return True
    kind = ("null" if value is None else "boolean" if isinstance(value, bool) else
            "integer" if isinstance(value, int) else "number" if isinstance(value, float) else
            "string" if isinstance(value, str) else "array" if isinstance(value, list) else
            "object")
    return kind in t or (kind == "integer" and "number" in t)


def _child(name: str, key: str, form: bool) -> str:
    if not name:
        return key
    return f"{name}[{key}]" if form else f"{name}.{key}"


def _looks_int(value: Any, form: bool) -> bool:
    return isinstance(value, str) and bool(_INT.match(value)) if form else \
        isinstance(value, int) and not isinstance(value, bool)


def _integer(value: Any, name: str, form: bool) -> int:
    if form and isinstance(value, str) and _INT.match(value) and len(value) <= 20:
        return int(value)
    if not form and isinstance(value, int) and not isinstance(value, bool):
        return value
    if not form and isinstance(value, float) and value.is_integer():
        return int(value)
    raise Invalid(_invalid(name, f"Invalid integer: {_show(value)}",
                           "parameter_invalid_integer"))


def _number(value: Any, name: str, form: bool) -> float | int:
    if form and isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite() and len(value) <= 40:
            return int(number) if number == number.to_integral_value() and "." not in value \
                else float(number)
    elif not form and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise Invalid(_invalid(name, f"Invalid decimal: {_show(value)}", None))


def _boolean(value: Any, name: str, form: bool) -> bool:
    if form and value in ("true", "false"):
        return bool(value == "true")
    if not form and isinstance(value, bool):
        return value
    raise Invalid(_invalid(name, f"Invalid boolean: {_show(value)}", None))


def _scalar(t: tuple[str, ...]) -> str:
    kinds = [k for k in t if k != "null"]
    return {"integer": "integer", "number": "decimal", "boolean": "boolean"}.get(
        kinds[0] if kinds else "", "string")


def _unknown(name: str) -> Issue:
    return Issue("unknown", name, f"Received unknown parameter: {name}", "parameter_unknown")


def _missing(name: str) -> Issue:
    return Issue("missing", name, f"Missing required param: {name}.", "parameter_missing")


def _invalid(name: str, message: str, code: str | None) -> Issue:
    return Issue("invalid", name or None, message, code)


def _empty_message(name: str) -> str:
    return (f"You passed an empty string for '{name}'. We assume empty values are an attempt "
            f"to unset a parameter; however '{name}' cannot be unset. You should remove "
            f"'{name}' from your request or supply a non-empty value.")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a hash"
    if isinstance(value, list):
        return "an array"
    text = str(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 100 else text[:97] + "..."


@lru_cache(maxsize=512)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        return None


def _is_date_time(v: str) -> bool:
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in v or " " in v


def _is_date(v: str) -> bool:
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return True


def _is_uuid(v: str) -> bool:
    try:
        UUID(v)
    except ValueError:
        return False
    return True


def _is_decimal(v: str) -> bool:
    try:
        return Decimal(v).is_finite()
    except InvalidOperation:
        return False


_FORMATS: dict[str, Callable[[str], bool]] = {
    "email": lambda v: bool(_EMAIL.match(v)) and len(v) <= 512,
    "date-time": _is_date_time,
    "date": _is_date,
    "uuid": _is_uuid,
    "decimal": _is_decimal,
    "uri": lambda v: bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", v)),
}
