"""The answers guard writes itself (block, and fail-closed errors), shared by the proxy
and ``guard test`` so that a rule test sees exactly the bytes an agent would get."""

from __future__ import annotations

from guard.decision import Decision
from guard.request import Response


def block_response(decision: Decision, *, status: int = 403) -> Response:
    """403 (or ``status``) JSON naming the rule and the reason.

    >>> from guard.decision import DEFAULT_DECISION
    >>> block_response(DEFAULT_DECISION).status
    403
    """
    return Response.json(status, {"error": {
        "type": "guard_blocked",
        "message": f"guard blocked this request (rule {decision.rule_id}): {decision.reason}",
        "rule": decision.rule_id,
        "reason": decision.reason,
    }})


def error_response(status: int, rule_id: str, message: str) -> Response:
    """The fail-closed answer (500 when a rule failed, 503 when the audit log is down)."""
    return Response.json(status, {"error": {
        "type": "guard_error", "rule": rule_id, "message": message,
    }})


def limit_response(status: int, rule_id: str, message: str) -> Response:
    """A request over one of guard's limits (guard/limits.py): 413 for a body too large.

    >>> limit_response(413, "guard.limit.decoded-size", "too big").status
    413
    """
    return Response.json(status, {"error": {
        "type": "guard_limit", "code": "request_too_large" if status == 413 else "limit",
        "rule": rule_id, "message": f"guard refused this request (rule {rule_id}): {message}",
    }})
