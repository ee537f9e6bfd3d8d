"""Webhook delivery: guard POSTs each event to the sandbox's webhook endpoints, signed the
way ``stripe.Webhook.construct_event`` checks (``Stripe-Signature: t=...,v1=HMAC``).

This is the one place where guard itself opens a connection, so it must not become a
way out of the sandbox. An event is delivered only when the endpoint's host is

- loopback (``localhost``, ``127.0.0.0/8``, ``::1``): delivered to the sandbox client's
  own address (what "localhost" means to the agent), or to loopback when the client is
  itself on loopback; or
- on the operator's allow list (``guard run --webhook-allow HOST``, ``*.domain`` works).

Anything else is never contacted: the attempt is recorded as a failed delivery in the
world (collection ``stripe.webhook_deliveries``) and logged. Redirects are not
followed and no proxy is used. Deliveries are queued in the world store when the request
commits and made by whichever replica claims them (:mod:`guard.world.deliveries`,
:mod:`guard.proxy.addons.deliveries`), retried with backoff when they fail.

>>> target("http://localhost:4242/hook", "10.0.0.7", ()).connect
'10.0.0.7'
>>> target("https://evil.example/x", "127.0.0.1", ())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
guard.providers.stripe.webhooks.Refused: host evil.example is not loopback and not in ...
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from guard.net.egress import METADATA_NAMES, forbidden, normal_name, system_resolve
from guard.providers.stripe.kinds import DELIVERIES, KINDS
from guard.rules.matchers import HostPattern
from guard.world.deliveries import Delivery

if TYPE_CHECKING:
    from guard.providers.stripe.call import Call
    from guard.world.store import WorldStore

log = logging.getLogger("guard")
TIMEOUT = 10.0
KIND = "stripe.webhook"  # the deliveries this module makes (Delivery.kind)


class Refused(Exception):
    """The endpoint's URL is not one guard may deliver to."""


@dataclass(frozen=True)
class Target:
    scheme: str
    connect: str  # the address guard connects to
    port: int
    path: str
    host: str  # the URL's host: Host header and TLS server name


def sign(payload: str, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def target(url: str, client: str, allow: Sequence[str]) -> Target:
    """Where guard may deliver ``url`` for a sandbox whose client address is ``client``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise Refused(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(HostPattern(a.lower()).matches(host) for a in allow):
        return Target(parts.scheme, host, port, path, host)
    if is_loopback(host):
        if client and not is_loopback(client):
            return Target(parts.scheme, client, port, path, host)
        return Target(parts.scheme, "127.0.0.1" if host.endswith("localhost") else host,
                      port, path, host)
    raise Refused(f"host {host} is not loopback and not in --webhook-allow")


def schedule(call: Call) -> None:
    """Queue the call's events for delivery (:mod:`guard.world.deliveries`): in the world
    store once the request commits, so any replica delivers them."""
    if not call.outbox:
        return
    allow = tuple(call.ctx.options.get("webhook_allow") or ())
    now = time.time()
    for event_id, endpoint_id in call.outbox:
        call.ctx.deliver(Delivery(KIND, call.world.name, event_id, endpoint_id,
                                  call.request.sandbox, call.request.client, allow,
                                  queued=now))
    call.outbox = []


@dataclass(frozen=True)
class Attempted:
    """What one attempt did: the delivery record kept in the world (None: nothing was
    left to deliver), and when to try again (None: never)."""

    record: dict[str, Any] | None
    retry_at: float | None
    why: str  # for the audit event


OffThread = Callable[[Callable[[], Any]], Awaitable[Any]]


async def attempt(store: WorldStore, job: Delivery, retries: Sequence[float],
                  off: OffThread) -> Attempted:
    """Deliver ``job`` once and record it in its world: the delivery record (collection
    ``stripe.webhook_deliveries``, one per event and endpoint, the last attempt's), and
    on a 2xx one fewer of the event's ``pending_webhooks``. A failure (no answer, or not
    2xx) is tried again ``retries[n-1]`` seconds after the n-th attempt, as Stripe
    retries; a URL guard may not deliver to is never tried again. ``off(fn)`` runs the
    world's reads and writes (off the event loop for Redis)."""

    def load() -> tuple[dict[str, Any], dict[str, Any]] | str:
        if not store.exists(job.world):
            return f"sandbox world {job.world!r} is gone"
        world = store.world(job.world)
        event = world.get(KINDS["event"].collection, job.event)
        endpoint = world.get(KINDS["webhook_endpoint"].collection, job.endpoint)
        if event is None:
            return f"event {job.event} is gone"
        if endpoint is None or endpoint.get("deleted"):
            return f"webhook endpoint {job.endpoint} is gone"
        if endpoint.get("status") != "enabled":
            return f"webhook endpoint {job.endpoint} is disabled"
        return event, endpoint

    found = await off(load)
    if isinstance(found, str):
        return Attempted(None, None, f"not delivered: {found}")
    event, endpoint = found
    record = await deliver(event, endpoint, job.client, job.allow)
    n = job.attempt + 1
    ok = record["status"] is not None and 200 <= record["status"] < 300
    refused = record["delivered_to"] is None
    retry_at = (time.time() + retries[n - 1]
                if not ok and not refused and n <= len(retries) else None)
    record["attempts"] = n
    record["next_retry_at"] = int(retry_at) if retry_at is not None else None

    def note(changes: object) -> None:
        world = store.world(job.world)
        world.put(DELIVERIES, record)
        if ok:
            stored = world.get(KINDS["event"].collection, event["id"])
            if stored is not None and stored["pending_webhooks"] > 0:
                stored["pending_webhooks"] -= 1
                world.put(KINDS["event"].collection, stored)

    def noted() -> None:
        # again from the start if another replica wrote first (the world's lock keeps it
        # apart from this process's requests)
        store.world(job.world).atomically(note)
        store.flush(store.world(job.world))

    await off(noted)
    outcome = (f"HTTP {record['status']}" if record["status"] is not None
               else record["error"])
    return Attempted(record, retry_at, outcome)


async def deliver(event: dict[str, Any], endpoint: dict[str, Any], client: str,
                  allow: Sequence[str]) -> dict[str, Any]:
    """POST one event; returns the delivery record (never raises)."""
    record: dict[str, Any] = {
        "id": f"{event['id']}:{endpoint['id']}", "event": event["id"],
        "webhook_endpoint": endpoint["id"], "url": endpoint["url"], "delivered_to": None,
        "status": None, "error": None, "attempted_at": int(time.time()),
    }
    try:
        t = target(endpoint["url"], client, allow)
    except Refused as e:
        record["error"] = f"not delivered: {e}"
        log.warning("guard: webhook %s for %s not delivered: %s", event["id"],
                    endpoint["url"], e)
        return record
    try:
        t = await _pin(t)
    except Refused as e:
        record["error"] = f"not delivered: {e}"
        log.warning("guard: webhook %s for %s not delivered: %s", event["id"],
                    endpoint["url"], e)
        return record
    payload = json.dumps(event, indent=2, ensure_ascii=False)
    if not payload.isascii():
        try:
            payload.encode()
        except UnicodeEncodeError:  # a lone surrogate: escaped, as the request sent it
            payload = json.dumps(event, indent=2)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Accept": "*/*; q=0.5, application/xml",
        "Cache-Control": "no-cache",
        "Host": t.host if t.port in (80, 443) else f"{t.host}:{t.port}",
        # Signed with real time: construct_event rejects signatures older than 5 minutes.
        "Stripe-Signature": sign(payload, endpoint["secret"], int(time.time())),
    }
    record["delivered_to"] = f"{t.connect}:{t.port}"
    try:
        record["status"] = await asyncio.to_thread(_post, t, headers, payload.encode())
    except (OSError, http.client.HTTPException) as e:
        record["error"] = f"{type(e).__name__}: {e}"
        log.warning("guard: webhook %s to %s failed: %s", event["id"], endpoint["url"], e)
    return record


async def _pin(t: Target) -> Target:
    """Resolve the target once and connect to that address: never to a cloud-metadata
    name or address, even on the operator's allow list (webhook receivers on private
    networks are fine; the instance's credentials service never is)."""
    if normal_name(t.host) in METADATA_NAMES:
        raise Refused(f"{t.host} is a cloud metadata name")
    if is_loopback(t.connect):
        return t
    try:
        addresses = await system_resolve(t.connect, t.port)
    except OSError as e:
        raise Refused(f"{t.connect} does not resolve: {e}") from None
    safe = [a for a in addresses if forbidden(a) != "cloud metadata"]
    if not safe:
        raise Refused(f"{t.connect} resolves only to cloud metadata addresses")
    return replace(t, connect=safe[0])


def _post(t: Target, headers: dict[str, str], body: bytes) -> int:
    conn: http.client.HTTPConnection
    if t.scheme == "https":
        conn = _Https(t.connect, t.port, t.host)
    else:
        conn = http.client.HTTPConnection(t.connect, t.port, timeout=TIMEOUT)
    try:
        conn.request("POST", t.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class _Https(http.client.HTTPSConnection):
    """HTTPS to ``address`` while verifying the certificate for the URL's host name."""

    def __init__(self, address: str, port: int, server_name: str) -> None:
        super().__init__(address, port, timeout=TIMEOUT, context=ssl.create_default_context())
        self._server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self._server_name)
