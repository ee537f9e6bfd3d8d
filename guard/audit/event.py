"""Audit events, built from plain data (no mitmproxy types): one per flow.

The schema is versioned (``"v": 1``) and documented in README.md 'Audit log'.
Everything that comes from the request or the response passes through the
:class:`~guard.audit.redact.Redactor` here, in one place, so no field can be
forgotten. Bodies above the size limit keep their first ``body_limit`` bytes,
their full size and the SHA-256 of the whole (redacted) body.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from guard.audit.redact import Redactor
from guard.request import Request
from guard.world.store import Change

DEFAULT_BODY_LIMIT = 64 * 1024
OUTBOX = "outbox"  # the world collection where email/SMS/chat packs keep what was "sent"
_URL_SAFE = "[]:,/@!$'()*;=-._~"


@dataclass
class FlowRecord:
    """What happened to one request, as the addon saw it."""

    request: Request
    rule_id: str
    action: str  # simulate | block | allow | error
    reason: str = ""
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes | None = b""  # None: streamed to the client, not kept
    upstream: bool = False
    started: float = 0.0  # time.time()
    duration_ms: float = 0.0
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    policy: str | None = None  # the label of the sandbox's own policy, when it has one


class EventBuilder:
    """Turns a :class:`FlowRecord` into a redacted, size-limited event (sequence number
    and hashes are added by the writer)."""

    def __init__(self, redactor: Redactor | None = None,
                 body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.redactor = redactor or Redactor()
        self.body_limit = body_limit

    def build(self, record: FlowRecord) -> dict[str, Any]:
        r, req = self.redactor, record.request
        changes = [self._change(c) for c in record.changes]
        event: dict[str, Any] = {
            "kind": "flow",
            "time": iso_time(record.started),
            "sandbox": req.sandbox,
            **({"policy": record.policy} if record.policy else {}),
            "client": req.client,
            "method": req.method,
            "url": self.url(req),
            "host": req.host,
            "rule": record.rule_id,
            "action": record.action,
            "reason": r.text(record.reason),
            "status": record.status,
            "upstream": record.upstream,
            "duration_ms": round(record.duration_ms, 3),
            "request": {
                "headers": r.headers(req.headers),
                "body": self.body(req.body, req.header("content-type") or ""),
            },
            "response": {
                "headers": r.headers(record.response_headers),
                "body": self.body(record.response_body,
                                  _header(record.response_headers, "content-type")),
            },
            "changes": changes,
            "outbox": [c["id"] for c in changes
                       if c["collection"] == OUTBOX and c["op"] != "delete"],
        }
        if record.error:
            event["error"] = r.text(record.error)
        return event

    def url(self, req: Request) -> str:
        default = 443 if req.scheme in ("https", "wss") else 80
        netloc = req.host if req.port == default else f"{req.host}:{req.port}"
        query = "&".join(
            f"{quote(k, safe=_URL_SAFE)}={quote(v, safe=_URL_SAFE)}" if v != "" else
            quote(k, safe=_URL_SAFE) for k, v in self.redactor.query(req.query))
        path = self.redactor.text(req.path)
        return f"{req.scheme}://{netloc}{path}" + (f"?{query}" if query else "")

    def body(self, body: bytes | None, content_type: str) -> dict[str, Any] | None:
        """``None`` for no body; else size, text (UTF-8) or base64, and for a body over the
        limit ``truncated`` plus the SHA-256 of the whole redacted body."""
        if body is None:
            return {"streamed": True}
        if not body:
            return None
        clean = self.redactor.body(body, content_type)
        out: dict[str, Any] = {"size": len(body)}
        kept = clean[:self.body_limit]
        if len(clean) > self.body_limit:
            out["truncated"] = True
            out["sha256"] = hashlib.sha256(clean).hexdigest()
        try:
            out["text"] = kept.decode("utf-8")
        except UnicodeDecodeError as e:
            if out.get("truncated") and e.start >= len(kept) - 3:
                out["text"] = kept[:e.start].decode("utf-8")  # a character cut in half
            else:
                out["base64"] = base64.b64encode(kept).decode()
        if clean != body:
            out["redacted"] = True
        return out

    def _change(self, change: Change) -> dict[str, Any]:
        obj = self.redactor.data(change.object) if change.object is not None else None
        if obj is not None:
            size = len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())
            if size > self.body_limit:
                obj = {"truncated": True, "size": size, "keys": sorted(obj)[:50]}
        return {"op": change.op, "collection": change.collection, "id": change.id,
                "object": obj}


def iso_time(ts: float) -> str:
    """``2026-01-01T00:00:00.000Z``: UTC, milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def body_bytes(body: dict[str, Any] | None) -> bytes:
    """The (redacted, possibly truncated) body an event recorded, as bytes."""
    if not body:
        return b""
    if "base64" in body:
        return base64.b64decode(body["base64"])
    return str(body.get("text", "")).encode()


def _header(headers: list[tuple[str, str]], name: str) -> str:
    for k, v in headers:
        if k.lower() == name:
            return v
    return ""



def system_event(rule_id: str, action: str, reason: str, **extra: Any) -> dict[str, Any]:
    """An event of guard's own, not of a flow (a rule reload, for example). It has the flow
    event's fields, empty where there is no request, so readers need no special case.

    >>> system_event("guard.reload", "reload", "3 rules")["rule"]
    'guard.reload'
    """
    return {
        "kind": "system",
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "sandbox": "", "client": "", "method": "", "url": "", "host": "",
        "rule": rule_id, "action": action, "reason": reason,
        "status": None, "upstream": False, "duration_ms": 0.0,
        "request": {"headers": []}, "response": {"headers": []}, "changes": [],
        **extra,
    }
