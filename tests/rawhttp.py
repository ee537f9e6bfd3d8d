"""Raw HTTP/1.1 over a socket, for tests that send bytes no client library would."""

from __future__ import annotations

import socket


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` to guard on loopback ``port``; the final answer (after any 1xx), read
    until its Content-Length is in or guard closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
        c.sendall(data)
        got = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return got
            got += chunk
            while got.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in got:
                got = got.split(b"\r\n\r\n", 1)[1]  # 100 Continue and the like
            head, sep, body = got.partition(b"\r\n\r\n")
            if sep:
                lengths = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                           if line.lower().startswith(b"content-length:")]
                if lengths and len(body) >= lengths[0]:
                    return got
