"""Fixtures for the audit tests: a log written by a real guard from real traffic (simulated,
blocked, allowed, two sandboxes, an outbox record), and the helpers to make one."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from guard.options import Options
from guard.proxy.embedded import RunningGuard
from tests.audit.audit_helpers import RULES, EchoUpstream, agent_session, session
from tests.sandboxes import KEY_FILE
from tests.stores import session_store as STORE


@pytest.fixture
def make_session() -> Callable[..., requests.Session]:
    return session


@pytest.fixture(scope="session")
def recorded_log(tmp_path_factory: pytest.TempPathFactory, confdir: Path) -> Path:
    """A log of :func:`agent_session` through a real guard (copy it before changing it)."""
    d = tmp_path_factory.mktemp("recorded")
    up = EchoUpstream()
    cfg = Options(rules=[str(RULES)], listen_port=0, confdir=confdir, quiet=True, state=None, store=STORE(),
                    audit=d / "audit.jsonl", sandbox_from="header", seed=7,
                    sandbox_key=KEY_FILE)
    try:
        with RunningGuard(cfg) as g:
            agent_session(g, up.port)
    finally:
        up.close()
    return d / "audit.jsonl"


@pytest.fixture
def log_copy(recorded_log: Path, tmp_path: Path) -> Path:
    out = tmp_path / "audit.jsonl"
    shutil.copy(recorded_log, out)
    return out


@pytest.fixture
def echo_upstream() -> Iterator[EchoUpstream]:
    up = EchoUpstream()
    yield up
    up.close()
