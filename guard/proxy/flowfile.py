"""Export the log as a mitmproxy flow file (``mitmweb -r FILE``, ``mitmdump -nr FILE``).

It lives in the proxy package because a file that mitmproxy's own ``FlowReader``
loads has to be written with mitmproxy's own flow classes and ``FlowWriter`` (its
format is mitmproxy's, versioned by mitmproxy). guard's verdict travels in each
flow's comment and in ``flow.metadata["guard"]``; the bodies are the logged, redacted ones, so the
recorded ``Content-Encoding`` is dropped and ``Content-Length`` matches them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import connection, http, io
from mitmproxy.flow import Error

from guard.audit.event import body_bytes
from guard.forensics.query import parse_time

_FIX = ("content-encoding", "content-length", "transfer-encoding")


def write_flows(events: Iterable[dict[str, Any]], out: Path) -> int:
    """Write one HTTP flow per flow event; returns how many."""
    n = 0
    with open(out, "wb") as f:
        writer = io.FlowWriter(f)
        for e in events:
            if e.get("kind", "flow") != "flow" or e.get("method") == "TCP":
                continue
            writer.add(to_flow(e))
            n += 1
    return n


def to_flow(e: dict[str, Any]) -> http.HTTPFlow:
    start = parse_time(str(e["time"])).timestamp()
    end = start + float(e.get("duration_ms") or 0) / 1000
    url = urlsplit(str(e["url"]))
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url.hostname or str(e.get("host", ""))
    client = connection.Client(peername=(str(e.get("client") or "0.0.0.0"), 0),
                               sockname=("0.0.0.0", 0), timestamp_start=start)
    client.timestamp_end = end
    server = connection.Server(address=(host, port))
    if e.get("upstream"):
        server.timestamp_start, server.timestamp_end = start, end
    flow = http.HTTPFlow(client, server)
    req, resp = e.get("request") or {}, e.get("response") or {}
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    flow.request = http.Request(
        host, port, str(e["method"]).encode(), url.scheme.encode(), b"", path.encode(),
        b"HTTP/1.1", _headers(req.get("headers"), body_bytes(req.get("body"))),
        body_bytes(req.get("body")), None, start, start)
    if e.get("status"):
        content = body_bytes(resp.get("body"))
        flow.response = http.Response(
            b"HTTP/1.1", int(e["status"]), b"", _headers(resp.get("headers"), content),
            content, None, start, end)
    else:
        flow.error = Error(str(e.get("error") or "no response"), timestamp=end)
    flow.timestamp_created = start
    flow.comment = (f"guard seq {e.get('seq')}: {e.get('action')} by {e.get('rule')}"
                    + (f": {e.get('reason')}" if e.get("reason") else ""))
    flow.metadata["guard"] = {k: e.get(k) for k in ("seq", "sandbox", "rule", "action",
                                                    "reason", "upstream", "hash")}
    return flow


def _headers(pairs: Any, content: bytes) -> http.Headers:
    fields = [(str(k).encode(), str(v).encode()) for k, v in pairs or []
              if str(k).lower() not in _FIX]
    if content:
        fields.append((b"content-length", str(len(content)).encode()))
    return http.Headers(fields)
