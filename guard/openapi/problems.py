"""Error shapes, declared per pack: how a provider says "bad request" and "not found".

``rfc9457`` (the default) answers an RFC 9457 problem document; ``stripe`` answers Stripe's
``{"error": {"type": "invalid_request_error", "code": ..., "param": ..., "message": ...}}``;
``plaid`` answers Plaid's ``{"error_type": "INVALID_REQUEST", "error_code": ...}`` (HTTP 400
even for unknown ids, as Plaid's RPC-style API does).
A provider package can register its own with :func:`register`.

>>> import json
>>> from guard.openapi.validate import Issue
>>> r = SHAPES["stripe"].invalid(Issue("unknown", "foo", "Received unknown parameter: foo",
...                                    "parameter_unknown"))
>>> r.status, json.loads(r.body)["error"]["code"]
(400, 'parameter_unknown')
>>> json.loads(SHAPES["rfc9457"].not_found("pet", "p_1", "/pets/p_1").body)["status"]
404
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from guard.openapi.validate import Issue
from guard.request import Response, json_bytes


@dataclass(frozen=True)
class Shape:
    """Builds the provider's error answers."""

    name: str
    invalid: Callable[[Issue], Response]
    not_found: Callable[[str, str, str], Response]  # (noun, id, request path)
    rate_limited: Callable[[], Response] = lambda: _rfc_status(429, "Too Many Requests")
    server_error: Callable[[], Response] = lambda: _rfc_status(500, "Internal Server Error")


def _rfc_status(status: int, title: str) -> Response:
    r = _problem(status, title, "injected by guard's faults: retry later" if status == 429
                 else "an error on the provider's side; retry later")
    if status == 429:
        r.headers.append(("Retry-After", "1"))
    return r


def _problem(status: int, title: str, detail: str, **extra: object) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(status, [("Content-Type", "application/problem+json")],
                    json_bytes(body))


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


def _stripe_rate_limited() -> Response:
    # Stripe's 429: the SDKs retry it when Stripe-Should-Retry says so.
    r = _stripe_body(429, "Request rate limit exceeded. Learn more about rate limits here "
                     "https://stripe.com/docs/rate-limits.", "rate_limit", None)
    r.headers += [("Stripe-Should-Retry", "true"), ("Retry-After", "1")]
    return r


def _stripe_server_error() -> Response:
    body = {"error": {"message": "An unknown error occurred", "type": "api_error"}}
    return Response.json(500, body, [("Stripe-Should-Retry", "true")])


def _plaid_body(status: int, error_type: str, code: str, message: str) -> Response:
    body = {"display_message": None, "documentation_url":
            f"https://plaid.com/docs/errors/{error_type.lower().replace('_', '-')}/#"
            f"{code.lower().replace('_', '-')}", "error_code": code,
            "error_code_reason": None, "error_message": message, "error_type": error_type,
            "request_id": "", "suggested_action": None}
    return Response.json(status, body)


_PLAID_CODES = {"unknown": "UNKNOWN_FIELDS", "missing": "MISSING_FIELDS",
                "body": "INVALID_BODY"}


def _plaid_invalid(issue: Issue) -> Response:
    code = _PLAID_CODES.get(issue.kind, "INVALID_FIELD")
    message = issue.message
    if issue.kind == "unknown":
        message = f"the following fields are not recognized by this endpoint: {issue.param}"
    elif issue.kind == "missing":
        message = f"the following required fields are missing: {issue.param}"
    return _plaid_body(400, "INVALID_REQUEST", code, message)


def _plaid_not_found(noun: str, id: str, path: str) -> Response:
    return _plaid_body(400, "INVALID_INPUT", "INVALID_" + noun.upper().replace(" ", "_")
                       + "_ID", f"the {noun} id '{id}' does not exist")


SHAPES: dict[str, Shape] = {
    "rfc9457": Shape("rfc9457", _rfc_invalid, _rfc_not_found),
    "stripe": Shape("stripe", _stripe_invalid, _stripe_not_found, _stripe_rate_limited,
                    _stripe_server_error),
    "plaid": Shape("plaid", _plaid_invalid, _plaid_not_found,
                   lambda: _plaid_body(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT",
                                       "rate limit exceeded for this sandbox"),
                   lambda: _plaid_body(500, "API_ERROR", "INTERNAL_SERVER_ERROR",
                                       "an unexpected error occurred")),
    "slack": Shape("slack", _rfc_invalid, _rfc_not_found, lambda: Response.json(
        429, {"ok": False, "error": "ratelimited"}, [("Retry-After", "1")]),
        lambda: Response.json(500, {"ok": False, "error": "internal_error"})),
}


def register(shape: Shape) -> None:
    SHAPES[shape.name] = shape
