"""Shared fixtures: a real guard proxy on an ephemeral port, and loopback upstream servers
that count every connection they get (so tests can prove nothing leaked)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from guard.proxy import RunConfig
from guard.testing import RunningGuard

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA for the whole session (generating it is the slow part of a first start)."""
    return tmp_path_factory.mktemp("confdir")


class Upstream:
    """A loopback HTTP server that counts TCP connections and requests."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                outer.connections += 1
                super().setup()

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests.append((self.command, self.path))
                body = f'{{"upstream": true, "path": "{self.path}"}}'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    u = Upstream()
    yield u
    u.close()


GuardFactory = Callable[..., RunningGuard]


@pytest.fixture
def guard_proxy(confdir: Path, tmp_path: Path) -> Iterator[GuardFactory]:
    """Start guard with the given rule paths and options; stopped after the test."""
    running: list[RunningGuard] = []

    def make(*rules: str | Path, **options: object) -> RunningGuard:
        options.setdefault("audit", tmp_path / "audit.jsonl")
        cfg = RunConfig(rules=[str(r) for r in rules], listen_port=0, confdir=confdir,
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
