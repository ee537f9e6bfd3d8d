"""``guard ready``: is a running guard answering, and is its world store reachable?

For readiness probes (Kubernetes ``exec``, Docker ``healthcheck``): a request through the
proxy to ``guard.internal`` (guard answers it itself, nothing is forwarded), and with
``--store`` a PING to the shared world store. Exit 0 when ready, 1 when not (saying why).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from urllib.parse import urlsplit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ready", help="exit 0 when a running guard answers (a readiness probe)",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--proxy", default="http://127.0.0.1:8080", metavar="URL",
                   help="the guard to ask (default http://127.0.0.1:8080)")
    p.add_argument("--store", default=None, metavar="URL",
                   help="also check this world store (redis://HOST:PORT/DB) answers")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="how long to wait for each answer (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    problem = check_proxy(args.proxy, args.timeout)
    if problem is None and args.store:
        problem = check_store(args.store)
    if problem is not None:
        print(f"guard ready: not ready: {problem}", file=sys.stderr)
        return 1
    print("ready")
    return 0


def check_proxy(proxy: str, timeout: float) -> str | None:
    parts = urlsplit(proxy)
    if parts.scheme != "http" or not parts.hostname:
        return f"--proxy must be http://HOST:PORT, got {proxy!r}"
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        # A proxy request (absolute URL) for guard's own host: answered by guard itself.
        conn.request("GET", "http://guard.internal/", headers={"Host": "guard.internal"})
        response = conn.getresponse()
        body = response.read(64 * 1024)
    except (OSError, http.client.HTTPException) as e:
        return f"{proxy}: {type(e).__name__}: {e}"
    finally:
        conn.close()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    rule = response.getheader("X-Guard-Rule") or (
        error.get("rule") if isinstance(error, dict) else None)
    if rule is None and not (isinstance(data, dict) and "endpoints" in data):
        return f"{proxy} answered {response.status}, but not as guard does"
    if response.status >= 500:  # e.g. guard.store-unavailable, guard.audit-unavailable
        return f"{proxy} answered {response.status} ({rule})"
    return None


def check_store(url: str) -> str | None:
    from guard.errors import WorldError
    from guard.world import open_store

    try:
        store = open_store(url)
    except WorldError as e:
        return str(e)
    try:
        ping = getattr(store, "ping", None)
        if ping is not None:
            ping()
    except WorldError as e:
        return str(e)
    finally:
        store.close()
    return None
