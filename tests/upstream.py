"""Loopback upstream servers for tests (importable as ``tests.upstream``)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Upstream:
    """A loopback HTTP server standing in for the real world: counts TCP connections and
    requests, and answers every request with a small JSON body (``body``, or one naming
    the path)."""

    def __init__(self, body: bytes | None = None) -> None:
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        self.headers: list[list[tuple[str, str]]] = []  # each request's headers, as received
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
                outer.headers.append(list(self.headers.items()))
                answer = body if body is not None else \
                    f'{{"upstream": true, "path": "{self.path}"}}'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
