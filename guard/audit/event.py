"""Audit events, built from plain data (no mitmproxy types): one per flow.

The schema is versioned (``"v": 1``) and documented in README.md 'Audit log'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from guard.audit.redact import redact_headers
from guard.request import Request
from guard.world.store import Change


@dataclass
class FlowRecord:
    """What happened to one request, as the addon saw it."""

    request: Request
    rule_id: str
    action: str  # simulate | block | allow | error
    reason: str = ""
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    upstream: bool = False
    started: float = 0.0  # time.time()
    duration_ms: float = 0.0
    changes: list[Change] = field(default_factory=list)
    error: str | None = None


def build_event(record: FlowRecord) -> dict[str, Any]:
    """The audit event for one flow, secrets redacted (sequence and hashes added by the writer)."""
    req = record.request
    event: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.started, UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "sandbox": req.sandbox,
        "client": req.client,
        "method": req.method,
        "url": req.url,
        "host": req.host,
        "rule": record.rule_id,
        "action": record.action,
        "reason": record.reason,
        "status": record.status,
        "upstream": record.upstream,
        "duration_ms": round(record.duration_ms, 3),
        "request": {"headers": redact_headers(req.headers)},
        "response": {"headers": redact_headers(record.response_headers)},
        "changes": [c.as_dict() for c in record.changes],
    }
    if record.error:
        event["error"] = record.error
    return event


def system_event(rule_id: str, action: str, reason: str, **extra: Any) -> dict[str, Any]:
    """An event of guard's own, not of a flow (a rule reload, for example). It has the flow
    event's fields, empty where there is no request, so readers need no special case.

    >>> system_event("guard.reload", "reload", "3 rules")["rule"]
    'guard.reload'
    """
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "sandbox": "", "client": "", "method": "", "url": "", "host": "",
        "rule": rule_id, "action": action, "reason": reason,
        "status": None, "upstream": False, "duration_ms": 0.0,
        "request": {"headers": []}, "response": {"headers": []}, "changes": [],
        **extra,
    }
