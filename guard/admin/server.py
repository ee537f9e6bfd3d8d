"""The admin listener: uvicorn serving the admin app inside guard's event loop.

:class:`AdminServer` is added to guard's master like any addon: ``running`` starts
serving and ``done`` stops it, in the loop the proxy runs in (no thread: the registry
and world store are the proxy's own objects). The socket is bound when the server is
made, before the proxy starts, so a taken port or a refused address stops ``guard run``
with a clear message instead of leaving guard running without its admin API.

The listener is its own socket: the proxy port never routes to it, and a request that
reaches it through the proxy (``CONNECT 127.0.0.1:ADMIN``) is refused by the proxy's
egress rules like any private address.

Token: ``--admin-token-file FILE`` (first line, at least 16 characters). Without one,
guard makes a random token and writes it to ``<confdir>/admin-token`` (mode 0600) so
the ``guard sandbox`` CLI on the same host finds it; a non-loopback listen address
without a token file is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import socket
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.routing import BaseRoute

from guard.admin.app import build_app
from guard.admin.control import ControlPlane
from guard.errors import SandboxError

log = logging.getLogger("guard")
TOKEN_FILE = "admin-token"
MIN_TOKEN = 16
EXPIRE_EVERY = 1.0  # seconds between TTL sweeps


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(host: str, token_file: Path | None, confdir: Path) -> str:
    """The admin token: from ``token_file``, or made and saved for a loopback listener."""
    if token_file is not None:
        try:
            lines = token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise SandboxError("invalid_request", f"cannot read --admin-token-file "
                               f"{token_file}: {e}") from e
        token = lines[0].strip() if lines else ""
        if len(token) < MIN_TOKEN:
            raise SandboxError("invalid_request", f"the admin token in {token_file} is "
                               f"shorter than {MIN_TOKEN} characters")
        return token
    if not is_loopback(host):
        raise SandboxError("invalid_request", f"refusing to serve the admin API on "
                           f"{host}, which is not a loopback address, without "
                           "--admin-token-file")
    token = secrets.token_urlsafe(32)
    path = confdir / TOKEN_FILE
    confdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # guard owns SIGINT/SIGTERM/SIGHUP; uvicorn must not take them over


class AdminServer:
    """An addon: serve the admin API from ``running`` until ``done``."""

    def __init__(self, control: ControlPlane, host: str, port: int, token: str, *,
                 extra: list[BaseRoute] | None = None, public: tuple[str, ...] = (),
                 own: tuple[str, ...] = (),
                 closing: tuple[Callable[[], None], ...] = (),
                 background: tuple[Callable[[], Coroutine[Any, Any, None]], ...] = ()
                 ) -> None:
        self.control = control
        self.host = host
        self.token = token
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto
        # says TCP, and without it every keep-alive answer waits ~40 ms (Nagle + delayed ACK)
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(128)
        except OSError as e:
            self._sock.close()
            raise SandboxError("invalid_request", f"cannot serve the admin API on "
                               f"{host}:{port}: {e.strerror or e}") from e
        self._sock.setblocking(False)
        self.port = int(self._sock.getsockname()[1])
        # timeout_graceful_shutdown: an open event stream must not hold up guard's shutdown
        self.app = build_app(control, token, extra=extra, public=public, own=own)
        config = uvicorn.Config(self.app, log_level="warning",
                                access_log=False, lifespan="off", timeout_keep_alive=30,
                                limit_concurrency=512, server_header=False,
                                timeout_graceful_shutdown=2)
        self._server = _Server(config)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = closing  # called first on shutdown: ends the console's live streams
        self._background = background  # run while the listener runs (the console's feeds)
        self.failure: BaseException | None = None  # the master stops guard when set

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests_served(self) -> int:
        """HTTP requests that reached the listener, counted as they arrive (tests prove
        that nothing sent to the proxy ever does)."""
        return self.app.received

    async def running(self) -> None:
        self._tasks.append(asyncio.create_task(self._server.serve(sockets=[self._sock])))
        self._tasks.append(asyncio.create_task(self._expire()))
        self._tasks += [asyncio.create_task(run()) for run in self._background]
        while not self._server.started and not self._tasks[0].done():
            await asyncio.sleep(0.01)
        if self._tasks[0].done():  # uvicorn stopped before serving: guard stops too
            self.failure = self._tasks[0].exception() or RuntimeError(
                "the admin API stopped while starting")
            return
        log.info("guard: admin API on %s", self.url)

    async def done(self) -> None:
        for close in self._closing:
            close()
        self._server.should_exit = True
        for task in self._tasks[1:]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._sock.close()

    def close(self) -> None:
        self._sock.close()

    async def _expire(self) -> None:
        while True:
            await asyncio.sleep(EXPIRE_EVERY)
            try:
                gone = await self.control.run(self.control.expire)
            except Exception:
                log.exception("guard: expiring idle sandboxes failed")
                continue
            if gone:
                log.info("guard: expired idle sandboxes %s", ", ".join(gone))
