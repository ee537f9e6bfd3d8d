"""Audit events, built from plain data (no mitmproxy types).

The schema is versioned (``"v": 2``) and documented in README.md 'Audit log'. A
flow guard answers itself (simulate, block, error) is one ``flow`` event, written
before its answer is sent. An allowed flow is two: a ``request`` event written
before the request is forwarded, and a ``flow`` event when it ends, which names
the request event in ``request_seq`` and carries the response instead of the
request (:func:`guard.audit.reader.events` joins the two for every reader).

Everything that comes from the request or the response passes through the
:class:`~guard.audit.redact.Redactor` here, in one place, so no field can be
forgotten. Bodies above the size limit keep their first ``body_limit`` bytes,
their full size and a keyed digest of the whole; they are cut *before* they are
scanned, so what the redactor reads is bounded too.

Building an event never fails because of what a request holds: strings keep bytes
that are not UTF-8 as Python's surrogate escapes (written as ``\\udcXX`` JSON
escapes, so the log stays valid UTF-8 and the bytes can be recovered), JSON
bodies nested too deeply are logged as text, and when an event cannot be built in
full for any other reason :meth:`EventBuilder.fallback` gives the minimal one
(the :mod:`~guard.audit.recorder` writes it instead).
"""

from __future__ import annotations

import base64
import functools
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from guard.audit.redact import Redactor
from guard.request import Request
from guard.world.store import Change

DEFAULT_BODY_LIMIT = 64 * 1024
SCAN_MARGIN = 8 * 1024  # read past the cut, so a secret straddling it is still found
MAX_CHANGES = 100  # world changes listed in one event; more are counted
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
    request_seq: int | None = None  # an allowed flow's request event, once written
    fault: dict[str, Any] | None = None  # what guard.faults injected (kind, delay_ms)


class EventBuilder:
    """Turns a :class:`FlowRecord` into a redacted, size-limited event (sequence number
    and hashes are added by the writer)."""

    def __init__(self, redactor: Redactor | None = None,
                 body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.redactor = redactor or Redactor()
        self.body_limit = body_limit

    def build(self, record: FlowRecord) -> dict[str, Any]:
        """The whole flow in one event (a flow guard answered itself)."""
        event = self._head(record, "flow")
        event["request"] = self._request(record.request)
        event.update(self._outcome(record))
        return event

    def build_request(self, record: FlowRecord) -> dict[str, Any]:
        """An allowed request, before it is forwarded: no outcome yet."""
        event = self._head(record, "request")
        event["request"] = self._request(record.request)
        return event

    def build_completion(self, record: FlowRecord) -> dict[str, Any]:
        """How an allowed flow ended; its request is in event ``record.request_seq``."""
        event = self._head(record, "flow")
        event["request_seq"] = record.request_seq
        event.update(self._outcome(record))
        return event

    def fallback(self, record: FlowRecord, problem: BaseException | str, *,
                 kind: str = "flow") -> dict[str, Any]:
        """The minimal event of a flow whose full event could not be built or written:
        who, what, which rule and why there is no more. Every string is cut short and
        made plain ASCII, so nothing in it can fail again."""
        req = record.request
        why = problem if isinstance(problem, str) else f"{type(problem).__name__}: {problem}"
        event: dict[str, Any] = {
            "kind": kind, "time": iso_time(record.started),
            "sandbox": plain(req.sandbox), "client": plain(req.client),
            "method": plain(req.method, 32), "url": plain(self._url_or_host(req), 1024),
            "host": plain(req.host), "rule": plain(record.rule_id),
            "action": plain(record.action, 16), "reason": plain(record.reason),
            "status": record.status if isinstance(record.status, int) else None,
            "upstream": bool(record.upstream), "duration_ms": _ms(record.duration_ms),
            "minimal": True,
            "error": plain(f"audit event could not be built in full ({why}); this is its "
                           "minimal record" + (f"; the flow's error: {record.error}"
                                               if record.error else ""), 2048),
        }
        if record.request_seq is not None:
            event["request_seq"] = record.request_seq
        return event

    # parts

    def _head(self, record: FlowRecord, kind: str) -> dict[str, Any]:
        r, req = self.redactor, record.request
        event: dict[str, Any] = {
            "kind": kind,
            "time": iso_time(record.started),
            "sandbox": r.text(req.sandbox),
            **({"policy": r.text(record.policy)} if record.policy else {}),
            **({"fault": record.fault} if record.fault else {}),
            "client": req.client,
            "method": r.text(req.method),
            "url": self.url(req),
            "host": r.text(req.host),
            "rule": record.rule_id,
            "action": record.action,
            "reason": r.text(record.reason),
            "status": record.status,
            "upstream": record.upstream,
            "duration_ms": _ms(record.duration_ms),
        }
        return event

    def _request(self, req: Request) -> dict[str, Any]:
        return {"headers": self.redactor.headers(req.headers),
                "body": self.body(req.body, req.header("content-type") or "")}

    def _outcome(self, record: FlowRecord) -> dict[str, Any]:
        changes = [self._change(c) for c in record.changes[:MAX_CHANGES]]
        out: dict[str, Any] = {
            "response": {
                "headers": self.redactor.headers(record.response_headers),
                "body": self.body(record.response_body,
                                  _header(record.response_headers, "content-type")),
            },
            "changes": changes,
            "outbox": [c["id"] for c in changes
                       if c["collection"] == OUTBOX and c["op"] != "delete"],
        }
        if len(record.changes) > MAX_CHANGES:
            out["changes_not_listed"] = len(record.changes) - MAX_CHANGES
        if record.error:
            out["error"] = self.redactor.text(record.error)
        return out

    def url(self, req: Request) -> str:
        default = 443 if req.scheme in ("https", "wss") else 80
        netloc = req.host if req.port == default else f"{req.host}:{req.port}"
        query = "&".join(
            f"{_quote(k)}={_quote(v)}" if v != "" else _quote(k)
            for k, v in self.redactor.query(req.query))
        path = self.redactor.text(req.sent_path)  # as sent, not its normal form
        return f"{req.scheme}://{self.redactor.text(netloc)}{path}" + (
            f"?{query}" if query else "")

    def _url_or_host(self, req: Request) -> str:
        try:
            return self.url(req)
        except Exception:
            return f"{req.scheme}://{req.host}"

    def body(self, body: bytes | None, content_type: str) -> dict[str, Any] | None:
        """``None`` for no body; else size, text (UTF-8) or base64, and for a body over the
        limit ``truncated`` plus ``hmac``, a keyed digest of the whole body (equal bodies
        have equal digests within a log; it confirms no guess about the content)."""
        if body is None:
            return {"streamed": True}
        if not body:
            return None
        limit = self.body_limit
        whole = len(body) <= limit
        scanned = body if whole else body[:limit + SCAN_MARGIN]
        clean = self.redactor.body(scanned, content_type, whole=whole)
        out: dict[str, Any] = {"size": len(body)}
        kept = clean[:limit]
        if not whole or len(clean) > limit:
            out["truncated"] = True
            out["hmac"] = self.redactor.digest(body)
        try:
            out["text"] = kept.decode("utf-8")
        except UnicodeDecodeError as e:
            if out.get("truncated") and e.start >= len(kept) - 3:
                out["text"] = kept[:e.start].decode("utf-8")  # a character cut in half
            else:
                out["base64"] = base64.b64encode(kept).decode()
        if clean != scanned:
            out["redacted"] = True
        return out

    def message(self, req: Request, rule_id: str, *, from_client: bool, content: bytes,
                text: bool, time: float) -> dict[str, Any]:
        """One WebSocket message of an allowed connection (``kind: websocket``): the flow
        event's fields for the connection's request, ``direction`` (client or server) and
        the message as a body, redacted and cut at the limit like any other."""
        return {
            "kind": "websocket", "time": iso_time(time), "sandbox": req.sandbox,
            "client": req.client, "method": req.method, "url": self.url(req),
            "host": req.host, "rule": rule_id, "action": "allow", "reason": "",
            "status": None, "upstream": True, "duration_ms": 0.0,
            "direction": "client" if from_client else "server",
            "opcode": "text" if text else "binary", "size": len(content),
            "request": {"headers": []}, "response": {"headers": []},
            "body": self.body(content, "text/plain" if text else "application/octet-stream"),
            "changes": [],
        }

    def _change(self, change: Change) -> dict[str, Any]:
        obj: Any = None
        if change.object is not None:
            # the stored size bounds the object's UTF-8 JSON size: measure only a big one
            small = change.size is not None and change.size <= self.body_limit
            size = None if small else json_size(change.object)
            if not small and (size is None or size > self.body_limit):
                keys = sorted(change.object)[:50] if isinstance(change.object, dict) else []
                obj = {"truncated": True, "size": size,
                       "keys": [self.redactor.text(str(k), limit=256) for k in keys]}
            else:
                obj = self.redactor.data(change.object)
        return {"op": change.op, "collection": change.collection,
                "id": self.redactor.text(str(change.id)), "object": obj}


def plain(value: Any, limit: int = 256) -> str:
    """``value`` as a short ASCII string: non-ASCII and undecodable characters escaped."""
    text = value if isinstance(value, str) else str(value)
    text = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    return text[:limit * 2]


def iso_time(ts: float) -> str:
    """``2026-01-01T00:00:00.000Z``: UTC, milliseconds (as ``datetime.fromtimestamp`` and
    ``isoformat(timespec="milliseconds")`` write it; the whole second is formatted once).

    >>> iso_time(1767225600.9996), iso_time(1767225600.9999996)
    ('2026-01-01T00:00:00.999Z', '2026-01-01T00:00:01.000Z')
    """
    try:
        frac, whole = math.modf(ts)
        micros = round(frac * 1e6)  # rounded half to even, as datetime does
        second = int(whole) + (micros >= 1_000_000) - (micros < 0)
        micros %= 1_000_000
        return f"{_second(second)}.{micros // 1000:03d}Z"
    except (OverflowError, OSError, ValueError):
        moment = datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=64)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def body_bytes(body: dict[str, Any] | None) -> bytes:
    """The (redacted, possibly truncated) body an event recorded, as bytes."""
    if not body:
        return b""
    if "base64" in body:
        return base64.b64decode(body["base64"])
    return str(body.get("text", "")).encode("utf-8", "surrogateescape")


def _quote(text: str) -> str:
    return quote(text, safe=_URL_SAFE, errors="surrogateescape")


def _ms(value: float) -> float:
    try:
        return round(float(value), 3)
    except (TypeError, ValueError, OverflowError):
        return 0.0


def json_size(obj: Any) -> int | None:
    """Size of ``obj`` as compact JSON, or None when it cannot be serialized at all."""
    try:
        return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                              default=str).encode("utf-8", "surrogatepass"))
    except (ValueError, TypeError, RecursionError):
        return None


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
