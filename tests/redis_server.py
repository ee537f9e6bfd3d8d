"""A real ``redis-server`` for the tests, on a free loopback port in a temporary directory.

Debian's ``redis-server`` package provides it (``.ci/run`` installs it). Each store a test
makes gets its own key prefix, so one server serves the whole session.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``start()``, ``stop()``, ``restart()``; with ``persist`` an append-only file in
    ``dir`` keeps the data across restarts."""

    def __init__(self, dir: Path, *, persist: bool = False) -> None:
        self.dir = dir
        self.persist = persist
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def prefixed(self) -> str:
        """The server's URL with a key prefix no other store in the session uses."""
        return f"{self.url}?prefix=t{uuid.uuid4().hex[:12]}:"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        for _ in range(5):
            self.port = self.port or _free_port()
            args = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", str(self.dir), "--save", "", "--daemonize", "no",
                    "--logfile", str(self.dir / "redis.log")]
            if self.persist:
                args += ["--appendonly", "yes", "--appendfsync", "always"]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            if self._ready():
                return self
            self.stop()
            self.port = 0  # the port was taken meanwhile: another one
        raise RuntimeError(f"redis-server did not start; see {self.dir / 'redis.log'}")

    def _ready(self) -> bool:
        import redis  # here, not at the top: conftest imports this module for every test

        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            return self.proc is not None and answers(client, self.proc)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port (the data survives with ``persist``)."""
        self.stop()
        self.start()


def answers(client: Any, proc: subprocess.Popen[bytes] | None, tries: int = 100) -> bool:
    """Whether a redis-server just started answers ``client``'s PING within about
    ``tries`` x 50 ms (False at once if its process ``proc`` has exited)."""
    import redis  # here, not at the top: conftest imports this module for every test

    for _ in range(tries):
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if client.ping():
                return True
        except redis.RedisError:
            time.sleep(0.05)
    return False
