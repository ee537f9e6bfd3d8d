"""Helpers for the email and SaaS pack tests: read a running guard's outbox, point
env-configured clients at it. (Not a conftest.py: a second module named ``conftest``
would shadow the one other test packages import by that name.)"""

from __future__ import annotations

from typing import Any

import pytest

from guard.proxy.embedded import RunningGuard


def outbox_of(g: RunningGuard, sandbox: str = "127.0.0.1") -> list[dict[str, Any]]:
    """The outbox records of one sandbox of a running guard (clients here are 127.0.0.1)."""
    return g.worlds.world(sandbox).list("outbox")


def env_proxy(monkeypatch: pytest.MonkeyPatch, g: RunningGuard) -> None:
    """Point env-configured clients (urllib, requests) at a running guard and its CA."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, g.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", g.ca)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", g.ca)
