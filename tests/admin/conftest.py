"""One guard with the admin API (proxy-user identity) for the admin tests, and its client.

The tests share it (module scope) and keep apart by giving every sandbox its own id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.client import Admin
from guard.options import Options
from guard.proxy.embedded import RunningGuard
from tests.stores import session_store


@pytest.fixture(scope="module")
def admin_guard(confdir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[RunningGuard]:
    d = tmp_path_factory.mktemp("admin")
    cfg = Options(listen_port=0, confdir=confdir, quiet=True, audit=d / "audit.jsonl",
                    sandbox_from="proxy-user", seed=11, admin_listen=("127.0.0.1", 0),
                    rules=[str(Path(__file__).parent / "rules")],
                    policy_rules=[str(Path(__file__).parent / "policy-rules")],
                    store=session_store())
    g = RunningGuard(cfg).__enter__()
    yield g
    g.stop()


@pytest.fixture
def admin(admin_guard: RunningGuard) -> Iterator[Admin]:
    with Admin(admin_guard.admin_url, admin_guard.admin_token) as a:
        yield a
