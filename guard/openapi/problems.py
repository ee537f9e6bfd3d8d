"""Error shapes, declared per pack: how a provider says "bad request" and "not found".

``rfc9457`` (the default) answers an RFC 9457 problem document; ``stripe`` answers Stripe's
``{"error": {"type": "invalid_request_error", "code": ..., "param": ..., "message": ...}}``.
A provider package can register its own with :func:`register`.

>>> from guard.openapi.validate import Issue
>>> r = SHAPES["stripe"].invalid(Issue("unknown", "foo", "Received unknown parameter: foo",
...                                    "parameter_unknown"))
>>> r.status, json.loads(r.body)["error"]["code"]
(400, 'parameter_unknown')
>>> json.loads(SHAPES["rfc9457"].not_found("pet", "p_1", "/pets/p_1").body)["status"]
404
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from guard.openapi.validate import Issue
from guard.request import Response


@dataclass(frozen=True)
class Shape:
    """Builds the provider's error answers."""

    name: str
    invalid: Callable[[Issue], Response]
    not_found: Callable[[str, str, str], Response]  # (noun, id, request path)


def _problem(status: int, title: str, detail: str, **extra: object) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(status, [("Content-Type", "application/problem+json")],
                    json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())


def _rfc_invalid(issue: Issue) -> Response:
    extra: dict[str, object] = {}
    if issue.param is not None:
        extra["errors"] = [{"detail": issue.message, "parameter": issue.param,
                            "code": issue.kind}]
    return _problem(400, "Bad Request", issue.message, **extra)


def _rfc_not_found(noun: str, id: str, path: str) -> Response:
    return _problem(404, "Not Found", f"No such {noun}: '{id}'", instance=path)


def _stripe_body(status: int, message: str, code: str | None, param: str | None) -> Response:
    err: dict[str, object] = {}
    if code is not None:
        err["code"] = code
        err["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    err["message"] = message
    if param is not None:
        err["param"] = param
    err["type"] = "invalid_request_error"
    return Response.json(status, {"error": err})


def _stripe_invalid(issue: Issue) -> Response:
    return _stripe_body(400, issue.message, issue.code, issue.param)


def _stripe_not_found(noun: str, id: str, path: str) -> Response:
    return _stripe_body(404, f"No such {noun}: '{id}'", "resource_missing", "id")


SHAPES: dict[str, Shape] = {
    "rfc9457": Shape("rfc9457", _rfc_invalid, _rfc_not_found),
    "stripe": Shape("stripe", _stripe_invalid, _stripe_not_found),
}


def register(shape: Shape) -> None:
    SHAPES[shape.name] = shape
