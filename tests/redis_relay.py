"""A loopback TCP relay in front of a redis-server that can hold one sandbox's traffic:
``hold(marker)`` stops forwarding every connection, from the first command that carries
``marker`` on, until ``release()``. That is a Redis that is slow for one request, exactly
where the test wants it, with no sleeps."""

from __future__ import annotations

import socket
import threading


class RedisRelay:
    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._marker: bytes | None = None
        self._released = threading.Event()
        self.holding = threading.Event()  # set once a command has been held
        self._sockets: list[socket.socket] = []
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, query: str = "") -> str:
        return f"redis://127.0.0.1:{self.port}/0{query}"

    def hold(self, marker: bytes) -> None:
        self._released.clear()
        self._marker = marker

    def release(self) -> None:
        self._marker = None
        self._released.set()

    def cut(self) -> None:
        """Drop every connection now, forwarding nothing more, held data included (a
        Redis that vanishes in the middle of a command)."""
        self._cut = True
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.release()

    def close(self) -> None:
        self.release()
        self._server.close()
        for s in self._sockets:
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_redis: bool) -> None:
        held = False
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                marker = self._marker
                if to_redis and (held or (marker is not None and marker in data)):
                    held = True
                    self.holding.set()
                    self._released.wait()
                if self._cut:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
