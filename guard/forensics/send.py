"""Re-send recorded requests through a running guard, to reproduce an agent's session.

Requests go through the proxy only (``http.client`` with a CONNECT tunnel for
https, trusting guard's CA), never straight to a host. They are the logged,
redacted requests: override credentials with ``headers`` when the rules need
a usable key (``Authorization: Bearer sk_test_...``). Requests that were
*allowed* the first time are skipped unless ``include_allowed`` is set: replaying
them would reach the real world again.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from guard.forensics.replay import LOG_KEY, NOT_RULE_DECIDED, request_from_event
from guard.sandbox import tokens

SANDBOX_HEADER = "X-Guard-Sandbox"
_DROP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
         "upgrade", "proxy-connection", "proxy-authorization", "content-encoding",
         "accept-encoding", "x-guard-sandbox"}


@dataclass(frozen=True)
class Sent:
    seq: int
    method: str
    url: str
    was_action: str
    was_status: int | None
    status: int | None = None
    action: str = ""  # X-Guard-Action of the new answer
    rule: str = ""  # X-Guard-Rule of the new answer
    error: str = ""
    skipped: str = ""
    log: str = ""  # with several writers' logs: the one this seq is of


def send(events: Iterable[dict[str, Any]], proxy: str, *, cafile: Path | None,
         sandbox: str | None = None, headers: Iterable[tuple[str, str]] = (),
         include_allowed: bool = False, timeout: float = 30.0,
         sandbox_key: bytes | None = None) -> list[Sent]:
    """Send each rule-decided flow event's request through ``proxy``. ``sandbox``
    ``"recorded"`` sends each event's own sandbox in X-Guard-Sandbox (for a guard run
    with ``--sandbox-from header``); another value sends that name. A guard with
    ``--sandbox-from header`` needs proof: with ``sandbox_key`` (that guard's
    ``--sandbox-key``) the header carries the name's derived token, else a literal token."""
    p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not p.hostname:
        raise ValueError(f"not a proxy URL: {proxy!r}")
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    overrides = [(k.strip(), v.strip()) for k, v in headers]
    out = []
    for e in events:
        if e.get("kind", "flow") != "flow" or e.get("rule") in NOT_RULE_DECIDED:
            continue
        base = Sent(int(e.get("seq", 0)), str(e.get("method")), str(e.get("url")),
                    str(e.get("action")), e.get("status"), log=str(e.get(LOG_KEY, "")))
        if e.get("action") == "allow" and not include_allowed:
            out.append(_with(base, skipped="was allowed: would reach the real world again"))
            continue
        req = request_from_event(e)
        names = {k.lower() for k, _ in overrides}
        hdrs = [(k, v) for k, v in req.headers if k not in _DROP and k not in names]
        hdrs += overrides
        if sandbox:
            name = str(e.get("sandbox")) if sandbox == "recorded" else sandbox
            hdrs.append((SANDBOX_HEADER, tokens.derive(name, sandbox_key)
                         if sandbox_key is not None else name))
        target = urlsplit(str(e.get("url")))
        path = target.path or "/"
        if target.query:
            path += "?" + target.query
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            conn = http.client.HTTPSConnection(p.hostname, p.port or 8080, timeout=timeout,
                                               context=context)
            conn.set_tunnel(target.hostname or "", target.port or 443)
        else:
            conn = http.client.HTTPConnection(p.hostname, p.port or 8080, timeout=timeout)
            path = f"{target.scheme}://{target.netloc}{path}"
        try:
            conn.putrequest(req.method, path, skip_accept_encoding=True)
            for k, v in hdrs:
                conn.putheader(k, v.encode("utf-8"))
            if req.body or req.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(req.body)))
            conn.endheaders(req.body or None)
            resp = conn.getresponse()
            resp.read()
            out.append(_with(base, status=resp.status,
                             action=resp.getheader("X-Guard-Action") or "",
                             rule=resp.getheader("X-Guard-Rule") or ""))
        except (OSError, http.client.HTTPException) as err:
            out.append(_with(base, error=f"{type(err).__name__}: {err}"))
        finally:
            conn.close()
    return out


def _with(base: Sent, **changes: Any) -> Sent:
    return Sent(**{**base.__dict__, **changes})
