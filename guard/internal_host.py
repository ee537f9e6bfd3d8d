"""``guard.internal``: guard answers agents about their own sandbox, live.

A reserved host name, answered by guard before any rule and never forwarded
(:mod:`guard.proxy.addons.internal`; over http and https alike). Each caller
sees only its own sandbox:

- ``GET /events?since=ID&limit=N``: its recent audit events, redacted exactly like
  the log, from the sandbox's event history in the world store (the last
  :data:`~guard.world.store.EVENTS_KEEP`; each with its feed ``id``, 1, 2, 3 ...), so
  every replica's events show whichever replica is asked;
- ``GET /events/stream``: the same as server-sent events. A simulated response
  cannot be held open and written to piece by piece in mitmproxy 12 (only
  responses from a real server stream), so the stream is *long polling in SSE
  form*: the answer holds the events after ``Last-Event-ID`` (or ``?since=``),
  waiting up to ``?timeout=`` seconds (default 15) for the first one, then ends
  with ``retry:``; ``EventSource`` reconnects and sends ``Last-Event-ID`` by
  itself, so a browser or SSE client sees one continuous stream;
- ``GET /outbox``: the world collection ``outbox`` (what it "sent");
- ``GET /world``: its world snapshot;
- ``GET /ca.pem`` (``/ca.crt`` as DER): guard's CA certificate, and ``GET /`` from a
  browser a short page of per-client instructions (:mod:`guard.internal_ca`); ``/`` for
  any other client lists the endpoints as JSON.

No mitmproxy here: the pipeline passes a :class:`~guard.request.Request` in and
sends the :class:`~guard.request.Response` back.
"""

from __future__ import annotations

import base64
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from guard import internal_ca
from guard.audit.event import OUTBOX, json_size
from guard.request import Request, Response, json_bytes
from guard.world.store import WorldStore

HOST = "guard.internal"
RULE_ID = "guard.internal"
RING = 200  # events one answer holds at most
DEFAULT_WAIT = 15.0
MAX_WAIT = 60.0
RETRY_MS = 1000


FEED_BODY_LIMIT = 1024
"""Bytes of each body (and of each changed object as JSON) the live feed keeps: the feed is
held in memory for every active sandbox; the audit log keeps the whole event."""


def publish(worlds: WorldStore, event: dict[str, Any],
            mark: dict[str, Any] | None = None, line: bytes | None = None) -> int | None:
    """Add an audit event to its sandbox's event history (the store's, so every replica's
    feed shows it), bodies cut by :func:`feed_event`, with ``mark`` (in a ``--workers``
    gateway: its id and the worker's index); returns its feed id. ``line`` is the event
    as the audit log wrote it: when nothing is cut or added, the store keeps those bytes.
    guard.internal's own flows stay out: polling the feed would otherwise feed itself."""
    if event.get("kind") not in ("flow", "request") or event.get("rule") == RULE_ID \
            or not event.get("sandbox"):
        return None  # a refused flow (unproven identity) belongs to no sandbox
    sandbox = str(event.get("sandbox"))
    cut = _feed_cuts(event, FEED_BODY_LIMIT)
    if not cut and not mark and line is not None:
        return worlds.add_event_line(sandbox, event, line)
    fed = {**event, **cut}
    if mark:
        fed.update(mark)
    return worlds.add_event(sandbox, fed)


def feed_event(event: dict[str, Any], limit: int = FEED_BODY_LIMIT) -> dict[str, Any]:
    """The event as the live feed keeps it: request and response bodies over ``limit``
    bytes cut as the audit log cuts an over-limit body (``truncated``, the original
    ``size``; the log's keyed ``hmac`` stays when the log has one; no plain digest, which
    would confirm guesses about the content), changed objects over ``limit`` as the log
    writes a big one (``truncated``, ``size``, the first keys). Anything else is shared
    with ``event``, which is not changed.

    >>> e = {"kind": "flow", "request": {"body": {"size": 3000, "text": "x" * 3000}}}
    >>> cut = feed_event(e)["request"]["body"]
    >>> len(cut["text"]), cut["truncated"], cut["size"]
    (1024, True, 3000)
    """
    return {**event, **_feed_cuts(event, limit)}


def _feed_cuts(event: dict[str, Any], limit: int) -> dict[str, Any]:
    """The members of ``event`` that :func:`feed_event` changes, changed (none: the feed
    keeps the event as it is)."""
    out: dict[str, Any] = {}
    for side in ("request", "response"):
        part = event.get(side)
        if isinstance(part, dict) and isinstance(part.get("body"), dict):
            body = _cut_body(part["body"], limit)
            if body is not part["body"]:
                out[side] = {**part, "body": body}
    changes = event.get("changes")
    if isinstance(changes, list) and changes:
        cut = [_cut_change(c, limit) for c in changes]
        if any(c is not was for c, was in zip(cut, changes, strict=True)):
            out["changes"] = cut
    return out


def _cut_body(body: dict[str, Any], limit: int) -> dict[str, Any]:
    text, b64 = body.get("text"), body.get("base64")
    if isinstance(text, str) and len(text) > limit // 4:
        raw = text.encode("utf-8")
        if len(raw) <= limit:
            return body
        kept = raw[:limit].decode("utf-8", "ignore")  # never half a character
        return {**body, "text": kept, "truncated": True}
    if isinstance(b64, str) and len(b64) > limit * 4 // 3 + 4:
        raw = base64.b64decode(b64)
        return {**body, "base64": base64.b64encode(raw[:limit]).decode(), "truncated": True}
    return body


def _cut_change(change: Any, limit: int) -> Any:
    obj = change.get("object") if isinstance(change, dict) else None
    if not isinstance(obj, dict) or obj.get("truncated") is True:
        return change
    size = json_size(obj)  # as the audit log measures it (a lone surrogate too)
    if size is not None and size <= limit:
        return change
    return {**change, "object": {"truncated": True, "size": size, "keys": sorted(obj)[:50]}}


class InternalHost:
    """Routes requests for :data:`HOST`."""

    def __init__(self, worlds: WorldStore, ca: Path | None = None) -> None:
        self.worlds = worlds
        self.ca = ca

    def handle(self, req: Request) -> Response | Coroutine[Any, Any, Response]:
        if req.method not in ("GET", "HEAD"):
            return _error(405, f"{HOST} answers GET only")
        sandbox = req.sandbox
        path = req.path.rstrip("/") or "/"
        if path == "/":
            if "text/html" in (req.header("accept") or ""):
                return internal_ca.page_response(sandbox)
            return Response.json(200, {"sandbox": sandbox, "endpoints": [
                "/events", "/events/stream", "/outbox", "/world", internal_ca.PEM,
                internal_ca.DER]})
        cert = internal_ca.certificate(self.ca, path)
        if cert is not None:
            return cert
        if path == "/events":
            events = self.worlds.events(sandbox, max(0, _int(req.query_first("since"), 0)),
                                        min(RING, max(1, _int(req.query_first("limit"), 100))))
            return Response.json(200, {"sandbox": sandbox, "events": events,
                                       "last_id": events[-1]["id"] if events else None})
        if path == "/events/stream":
            return self._stream(req)
        if path == "/outbox":
            outbox = self.worlds.world(sandbox).list(OUTBOX)
            return Response.json(200, {"sandbox": sandbox, "outbox": outbox})
        if path == "/world":
            return Response(200, [("Content-Type", "application/json")],
                            self.worlds.world(sandbox).snapshot_json())
        return _error(404, f"no such endpoint on {HOST}: {req.path}")

    async def _stream(self, req: Request) -> Response:
        since = _int(req.header("last-event-id") or req.query_first("since"), 0)
        timeout = min(MAX_WAIT, max(0.0, _float(req.query_first("timeout"), DEFAULT_WAIT)))
        events = await self.worlds.wait_events(req.sandbox, max(0, since), timeout)
        chunks = [f"retry: {RETRY_MS}\n\n"]
        for e in events:
            data = json_bytes(e).decode()
            chunks.append(f"id: {e['id']}\nevent: {e['kind']}\ndata: {data}\n\n")
        if not events:
            chunks.append(": no new events\n\n")
        return Response(200, [("Content-Type", "text/event-stream; charset=utf-8"),
                              ("Cache-Control", "no-cache")], "".join(chunks).encode())


def _error(status: int, message: str) -> Response:
    return Response.json(status, {"error": {"type": "guard_internal", "message": message}})


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default
