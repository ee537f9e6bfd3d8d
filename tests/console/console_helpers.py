"""Helpers shared by the console tests (a module of its own: ``conftest`` is not
importable by name when several test folders have one)."""

from __future__ import annotations

import contextlib
import itertools
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from guard.proxy.embedded import RunningGuard
from tests.sandboxes import token

_ids = itertools.count(1)


def sandbox(prefix: str = "c") -> str:
    """A sandbox name no other test in the session uses."""
    return f"{prefix}-{next(_ids)}"


def agent(g: RunningGuard, name: str) -> httpx.Client:
    """An HTTP client sending through guard as sandbox ``name``, trusting guard's CA."""
    return httpx.Client(proxy=g.url, headers={"X-Guard-Sandbox": token(name)}, timeout=30,
                        verify=ssl.create_default_context(cafile=g.ca))


def admin(g: RunningGuard, **kwargs: Any) -> httpx.Client:
    """A client of the admin listener with the bearer token."""
    return httpx.Client(base_url=g.admin_url, timeout=30,
                        headers={"Authorization": f"Bearer {g.admin_token}"}, **kwargs)


@contextlib.contextmanager
def browser_session(g: RunningGuard) -> Iterator[httpx.Client]:
    """A client of the admin listener holding a console session cookie, as a browser
    does after the login form."""
    with httpx.Client(base_url=g.admin_url, timeout=30) as c:
        r = c.post("/console/login", data={"token": g.admin_token})
        assert r.status_code == 303, r.text
        yield c


def ready(g: RunningGuard, *, token: bool = False) -> httpx.Response:
    headers = {"Authorization": f"Bearer {g.admin_token}"} if token else {}
    return httpx.get(g.admin_url + "/readyz", headers=headers, timeout=30)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(g: RunningGuard) -> Samples:
    with admin(g) as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
