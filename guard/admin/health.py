"""Probes and metrics on the admin listener: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` (liveness) answers 200 whenever guard's event loop runs: it is served by that
loop, so a guard stuck in a busy loop or a deadlock stops answering it, which is what a
liveness probe should restart.

``/readyz`` (readiness) answers 200 only when guard can do its job: the proxy listens,
rules are loaded, the audit log can be written (guard refuses all traffic otherwise) and
the world store answers (Redis); 503 with the failing checks named otherwise. A load
balancer then sends traffic elsewhere until it recovers, which guard does by itself.

Both are public: Kubernetes' probes and most load balancers cannot hold a secret, and an
answer says only ready or not and which checks fail. What a failing check says (a path,
an address, an error) is shown only with the admin token, like everything else.
``/metrics`` needs the token (Prometheus sends it from ``authorization.credentials_file``):
it names the rules and how much traffic each sees.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from guard.errors import AuditError
from guard.metrics import Metrics

log = logging.getLogger("guard")

Check = Callable[[], "str | None | Awaitable[str | None]"]
"""A readiness check: None when fine, else what is wrong (may be a coroutine)."""

CHECK_TIMEOUT = 6.0  # seconds one check may take (the Redis client gives up after 5)
HEALTH_PATHS = ("/healthz", "/readyz")


@dataclass
class Health:
    """The readiness checks, by name, run in order on every ``/readyz``."""

    checks: dict[str, Check] = field(default_factory=dict)

    async def run(self) -> dict[str, str | None]:
        results: dict[str, str | None] = {}
        for name, check in self.checks.items():
            try:
                outcome = check()
                if isinstance(outcome, Awaitable):
                    outcome = await asyncio.wait_for(outcome, CHECK_TIMEOUT)
                results[name] = outcome
            except TimeoutError:
                results[name] = f"no answer within {CHECK_TIMEOUT:.0f} s"
            except Exception as e:  # a broken check is a failing one, never a 500
                results[name] = f"{type(e).__name__}: {e}"
        return results


def audit_check(ready: Callable[[], None], path: Path | None, min_free: int) -> Check:
    """The audit log is writable: the writer is not broken (``ready`` raises while it is,
    and tries to heal it first, as every request does: a guard out of rotation gets no
    requests, so the probe must be what notices the disk has room again), and its
    directory has room for more (a disk about to fill fails the probe before requests
    are refused)."""
    def check() -> str | None:
        try:
            ready()
        except AuditError as e:
            return str(e)
        if path is not None:
            try:
                free = shutil.disk_usage(path.parent).free
            except OSError as e:
                return f"cannot read the free space of {path.parent}: {e.strerror or e}"
            if free < min_free:
                return f"{path.parent} has {free} bytes free (less than {min_free})"
        return None
    return check


def store_check(ping: Callable[[], None]) -> Check:
    """The world store answers (off the event loop: a Redis that hangs must not stall
    the proxy while the probe waits)."""
    async def check() -> str | None:
        try:
            await asyncio.to_thread(ping)
        except Exception as e:
            return str(e) or type(e).__name__
        return None
    return check


def workers_check(directory: Path, own: int) -> Check:
    """In a ``--workers`` gateway: every other live worker can write its audit log and has
    rules, as it said in its gauges (written every second; :mod:`guard.sharedmetrics`).
    This worker's own are the ``audit`` and ``rules`` checks; a worker that is down
    (being started again) takes no connections, so it fails nothing."""
    def check() -> str | None:
        from guard import sharedmetrics

        writable = sharedmetrics.gauges(directory, "guard_audit_writable")
        rules = sharedmetrics.gauges(directory, "guard_rules")
        bad = [f"worker {w} cannot write its audit log" for w, v in sorted(writable.items())
               if not v and w != str(own)]
        bad += [f"worker {w} has no rules loaded" for w, v in sorted(rules.items())
                if not v and w != str(own)]
        return "; ".join(bad) or None
    return check


def routes(health: Health, metrics: Metrics, token: str) -> list[BaseRoute]:
    """The three routes; ``token`` decides whether failing checks are explained."""
    secret = token.encode()

    def authorized(request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), secret)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(request: Request) -> Response:
        results = await health.run()
        ready = all(v is None for v in results.values())
        explain = authorized(request)
        checks = {name: "ok" if why is None else (why if explain else "failing")
                  for name, why in results.items()}
        if not ready:
            log.warning("guard: not ready: %s", "; ".join(
                f"{n}: {w}" for n, w in results.items() if w is not None))
        return JSONResponse({"ready": ready, "checks": checks},
                            status_code=200 if ready else 503, headers=_NO_STORE)

    async def scrape(request: Request) -> Response:
        body, content_type = metrics.exposition(request.headers.get("accept", ""))
        return Response(body, media_type=content_type, headers=_NO_STORE)

    return [Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route("/metrics", scrape, methods=["GET"])]


_NO_STORE = {"Cache-Control": "no-store"}
