"""Stripe's error shapes, as an exception handlers raise and the endpoint wrapper answers.

Stripe answers every failure with ``{"error": {...}}``: ``type`` is one of
``invalid_request_error`` (400/404), ``card_error`` (402), ``idempotency_error`` (400)
or ``api_error``; ``code``, ``param``, ``decline_code`` and ``doc_url`` say more. The
official SDKs pick their exception class from the status and ``type``, so both must be
exact.

>>> e = missing_param("amount")
>>> e.status, e.body()["error"]["message"], e.body()["error"]["param"]
(400, 'Missing required param: amount.', 'amount')
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error Stripe would answer with. Raised inside a handler, it undoes the handler's
    changes (the endpoint wrapper runs handlers in a world savepoint)."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {}
        if self.code is not None:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        err["message"] = self.message
        if self.param is not None:
            err["param"] = self.param
        err.update(self.extra)
        err["type"] = self.type
        return {"error": err}


def missing_param(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing",
                       param=param)


def invalid_param(param: str, message: str, code: str | None = None) -> StripeError:
    """A bad value. Stripe gives most of these no ``code`` (there is no
    ``parameter_invalid``); integers are ``parameter_invalid_integer``, empty strings
    ``parameter_invalid_empty``."""
    return StripeError(400, message, code=code, param=param)


def no_such(noun: str, id: str, param: str = "id") -> StripeError:
    """404 ``resource_missing``: ``No such customer: 'cus_x'``."""
    return StripeError(404, f"No such {noun}: '{id}'", code="resource_missing", param=param)


def unexpected_state(code: str, message: str, **extra: Any) -> StripeError:
    return StripeError(400, message, code=code, **extra)


def unrecognized(method: str, path: str) -> StripeError:
    return StripeError(404, f"Unrecognized request URL ({method}: {path}). Please see "
                       "https://stripe.com/docs or we can help at https://support.stripe.com/.")


def no_api_key() -> StripeError:
    return StripeError(401, "You did not provide an API key. You need to provide your API key "
                       "in the Authorization header, using Bearer auth (e.g. 'Authorization: "
                       "Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication"
                       " for details, or we can help at https://support.stripe.com/.")


def invalid_api_key(key: str) -> StripeError:
    shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
    return StripeError(401, f"Invalid API Key provided: {shown}")


def idempotency_conflict(key: str) -> StripeError:
    return StripeError(400, "Keys for idempotent requests can only be used with the same "
                       "parameters they were first used with. Try using a key other than "
                       f"'{key}' if you meant to execute a different request.",
                       type="idempotency_error")


def idempotency_endpoint(key: str, first: str, now: str) -> StripeError:
    return StripeError(400, "Keys for idempotent requests can only be used for the same "
                       f"endpoint they were first used for ('{first}' vs '{now}'). Try using "
                       f"a key other than '{key}' if you meant to execute a different request.",
                       type="idempotency_error")


def not_expandable(field: str, param: str) -> StripeError:
    return StripeError(400, f"This property cannot be expanded ({field}).", param=param)
