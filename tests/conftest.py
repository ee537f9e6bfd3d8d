"""Shared fixtures: a real guard proxy on an ephemeral port, and loopback upstream servers
that count every connection they get (so tests can prove nothing leaked)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.engine import Engine
from guard.options import Options
from guard.packs import Packs, load_packs
from guard.proxy.embedded import RunningGuard
from guard.rules.loader import RuleSet
from tests.redis_cluster import RedisClusterServers
from tests.redis_server import RedisServer
from tests.sandboxes import KEY_FILE
from tests.upstream import Upstream

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA for the whole session (generating it is the slow part of a first start)."""
    return tmp_path_factory.mktemp("confdir")


@pytest.fixture(scope="session")
def builtin_packs() -> Packs:
    """The built-in packs (rules and responses), loaded once for the session (about a
    second per load). Shared: do not change them; a test that needs its own copy calls
    load_packs([])."""
    return load_packs([])


@pytest.fixture(scope="session")
def builtin_rules(builtin_packs: Packs) -> RuleSet:
    return builtin_packs.ruleset


@pytest.fixture(scope="session")
def builtin_engine(builtin_packs: Packs) -> Engine:
    return builtin_packs.engine


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--store", choices=("memory", "redis"), default="memory",
                     help="the world store every guard the tests start uses (redis: a "
                     "redis-server the session starts)")
    parser.addoption("--no-fast-path", action="store_true", default=False,
                     help="every guard the tests start sends every connection through "
                     "mitmproxy's layers (guard run --no-fast-path); by default tunnels to "
                     "hosts no rule allows are served on the fast path, as guard runs")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (each user takes its own key prefix)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """One real three-node Redis Cluster for the session (each user takes its own prefix,
    with its own hash tag)."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(autouse=True)
def _world_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``--store redis`` every guard a test starts keeps its worlds in Redis, under a
    key prefix of its own (GUARD_STORE is what ``guard run`` reads; guards built in code ask
    tests.stores.session_store())."""
    if request.config.getoption("--store") == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        monkeypatch.setenv("GUARD_STORE", server.prefixed())
    else:
        monkeypatch.delenv("GUARD_STORE", raising=False)
    if request.config.getoption("--no-fast-path"):
        monkeypatch.setenv("GUARD_FAST_PATH", "0")  # guard run processes read it
        _no_fast_path_in_process(monkeypatch)
    else:
        monkeypatch.delenv("GUARD_FAST_PATH", raising=False)


def _no_fast_path_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--no-fast-path`` for the guards a test builds in this process from its own
    ``Options`` (not through ``guard_proxy``): each whose options do not say ``fast_path``
    themselves runs through mitmproxy's layers (a test that names the path keeps it)."""
    from guard.proxy import master

    start = master.GuardMaster.__init__

    def without_fast_path(self: master.GuardMaster, opts: Any, guard: master.Guard,
                          *args: Any, **kwargs: Any) -> None:
        if "fast_path" not in guard.options.model_fields_set:
            guard.options = guard.options.model_copy(update={"fast_path": False})
        start(self, opts, guard, *args, **kwargs)

    monkeypatch.setattr(master.GuardMaster, "__init__", without_fast_path)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    u = Upstream()
    yield u
    u.close()


GuardFactory = Callable[..., RunningGuard]


@pytest.fixture
def guard_proxy(confdir: Path, tmp_path: Path,
                request: pytest.FixtureRequest) -> Iterator[GuardFactory]:
    """Start guard with the given rule paths and options; stopped after the test."""
    running: list[RunningGuard] = []

    def make(*rules: str | Path, **options: object) -> RunningGuard:
        options.setdefault("audit", tmp_path / "audit.jsonl")
        # the confdir is the session's (one CA): worlds are not journaled there by default,
        # or every guard of the session would share them
        options.setdefault("state", None)
        if options.get("sandbox_from", "client") != "client":
            options.setdefault("sandbox_key", KEY_FILE)  # tokens.token(name) proves a name
        if options.get("state") is not None:
            options.setdefault("store", None)  # --state journals the in-process store only
        elif request.config.getoption("--store") == "redis":
            # each guard its own worlds, as with the in-process store
            options.setdefault("store", request.getfixturevalue("redis_server").prefixed())
        if request.config.getoption("--no-fast-path"):
            options.setdefault("fast_path", False)
        cfg = Options(rules=[str(r) for r in rules], listen_port=0, confdir=confdir,
                        quiet=True, **options)  # type: ignore[arg-type]
        g = RunningGuard(cfg).__enter__()
        running.append(g)
        return g

    yield make
    for g in running:
        g.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: the disk that fills up (the audit log's, in the tests that use it)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        if os.environ.get("GUARD_REQUIRE_NETNS"):
            pytest.fail("needs root and tmpfs mounts here")
        pytest.skip("needs root to mount a tiny tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
