"""``guard audit show``: one audit event as a person reads a flow, request first.

The log keeps an event as canonical JSON with sorted keys (``action`` first, ``url``
last), which is right for hashing and wrong for reading. This view puts the request line
first, then the decision, the request's headers and body, the response's, and the world
changes; bodies that are JSON are indented. Everything comes from the logged event, so it
is as redacted as the log, and everything an agent sent is made printable.

>>> print(render({"seq": 3, "time": "2026-01-01T00:00:00.000Z", "sandbox": "s1",
...     "method": "GET", "url": "https://x.test/a", "action": "block", "status": 403,
...     "rule": "guard.default-deny", "reason": "no rule", "duration_ms": 1.5,
...     "request": {"headers": [["accept", "*/*"]]},
...     "response": {"headers": [], "body": {"size": 2, "text": "{}"}}}))
GET https://x.test/a
  seq 3  2026-01-01T00:00:00.000Z  sandbox s1
  block by guard.default-deny: no rule
  status 403  1.5 ms  upstream: no
<BLANKLINE>
request headers:
  accept: */*
<BLANKLINE>
response body (2 bytes):
  {}
"""

from __future__ import annotations

import json
from typing import Any

from guard.textsafe import printable

_SKIP = {"v", "seq", "prev", "hash", "kind", "time", "sandbox", "client", "method", "url",
         "host", "action", "rule", "reason", "status", "duration_ms", "upstream", "request",
         "response", "changes", "outbox", "error", "end_seq", "request_seq", "body"}


def render(e: dict[str, Any]) -> str:
    """The readable view of event ``e``."""
    out: list[str] = []
    if e.get("kind") == "system":
        out.append(f"guard event {printable(e.get('rule'))}: {printable(e.get('action'))}")
    else:
        out.append(f"{printable(e.get('method'))} {printable(e.get('url'))}")
    seqs = f"seq {e.get('seq')}" + (f" (ends at seq {e['end_seq']})" if e.get("end_seq")
                                    else "")
    out.append(f"  {seqs}  {printable(e.get('time'))}  sandbox "
               f"{printable(e.get('sandbox')) or '-'}"
               + (f" (client {printable(e['client'])})"
                  if e.get("client") and e.get("client") != e.get("sandbox") else ""))
    decided = f"  {printable(e.get('action'))} by {printable(e.get('rule'))}"
    if e.get("reason"):
        decided += f": {printable(e.get('reason'))}"
    out.append(decided)
    if e.get("kind") != "system":
        status = e.get("status")
        ms = e.get("duration_ms")
        out.append(f"  status {status if status is not None else '-'}"
                   + (f"  {ms} ms" if isinstance(ms, (int, float)) else "")
                   + f"  upstream: {'yes' if e.get('upstream') else 'no'}"
                   + ("  (incomplete)" if e.get("incomplete") else ""))
    if e.get("error"):
        out.append(f"  error: {printable(e.get('error'))}")
    extra = {k: v for k, v in e.items() if k not in _SKIP}
    for k, v in sorted(extra.items()):
        out.append(f"  {printable(k)}: {printable(_compact(v))}")
    for side in ("request", "response"):
        part = e.get(side)
        if not isinstance(part, dict):
            continue
        headers = part.get("headers") or []
        if headers:
            out += ["", f"{side} headers:"]
            out += [f"  {printable(h[0])}: {printable(h[1])}" for h in headers
                    if isinstance(h, (list, tuple)) and len(h) == 2]
        body = part.get("body")
        if body:
            out += ["", *_body(f"{side} body", body)]
    if e.get("kind") == "websocket" and e.get("body"):
        out += ["", *_body(f"message ({printable(e.get('direction'))})", e["body"])]
    changes = e.get("changes") or []
    if changes:
        out += ["", "world changes:"]
        for c in changes:
            if not isinstance(c, dict):
                continue
            out.append(f"  {printable(c.get('op'))} {printable(c.get('collection'))} "
                       f"{printable(c.get('id'))}")
            if c.get("object") is not None:
                out += ["    " + printable(x) for x in _pretty(c["object"]).splitlines()]
    return "\n".join(out)


def _body(title: str, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return [f"{title}:", "  " + printable(_compact(body))]
    notes = [f"{body.get('size', '?')} bytes"]
    if body.get("truncated"):
        notes.append("truncated in the log")
    if body.get("redacted"):
        notes.append("redacted")
    if body.get("streamed"):
        return [f"{title}: streamed to the client, not kept"]
    lines = [f"{title} ({', '.join(notes)}):"]
    if "text" in body:
        text = str(body["text"])
        try:
            text = _pretty(json.loads(text))
        except ValueError:
            pass
        lines += ["  " + printable(x) for x in text.splitlines() or [""]]
    elif "base64" in body:
        lines.append(f"  (binary, base64) {printable(body['base64'])}")
    return lines


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
