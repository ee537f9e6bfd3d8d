"""Pass-through safety through a real proxy: allowed names are resolved by guard and
checked, Host and SNI must agree, and streamed responses of allowed hosts are streamed."""

from __future__ import annotations

import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.proxy.test_proxy import session


def allow_rules(tmp_path: Path) -> Path:
    path = tmp_path / "allow.yaml"
    path.write_text(textwrap.dedent("""
        pack: passthrough
        rules:
          - id: docs.allowed
            hosts: [docs.test]
            action: allow
            allow_private: true
            ports: ["1024-65535"]  # the test upstream's ephemeral port
          - id: internal.allowed
            hosts: [internal.test, "169.254.169.254", metadata.google.internal]
            action: allow
            ports: [80, "1024-65535"]
    """))
    return path


def fake_dns(table: dict[str, list[str]]):
    async def resolve(name: str, port: int) -> list[str]:
        return table.get(name, [])
    return resolve


def test_an_allowed_name_is_sent_to_the_address_guard_resolves(guard_proxy, upstream, tmp_path):
    g = guard_proxy(allow_rules(tmp_path))
    g.egress.resolve = fake_dns({"docs.test": ["127.0.0.1"]})
    r = session(g).get(f"http://docs.test:{upstream.port}/page")
    assert r.status_code == 200 and r.json() == {"upstream": True, "path": "/page"}
    assert r.headers["X-Guard-Rule"] == "docs.allowed"
    assert g.upstream_attempts == [("127.0.0.1", upstream.port, True)]


def test_an_allowed_name_resolving_to_a_private_address_is_refused(guard_proxy, upstream,
                                                                   tmp_path):
    g = guard_proxy(allow_rules(tmp_path))
    g.egress.resolve = fake_dns({"internal.test": ["10.20.30.40", "127.0.0.1"]})
    r = session(g).get(f"http://internal.test:{upstream.port}/")
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["rule"] == "guard.egress-refused"
    assert "rule internal.allowed allows it" in error["reason"]
    assert "10.20.30.40 (private)" in error["reason"] and "127.0.0.1 (loopback)" in error["reason"]
    assert g.upstream_attempts == [] and upstream.connections == 0


def test_metadata_addresses_and_names_are_refused_even_when_a_rule_allows_them(guard_proxy,
                                                                               tmp_path):
    g = guard_proxy(allow_rules(tmp_path))
    g.egress.resolve = fake_dns({"169.254.169.254": ["169.254.169.254"],
                                "metadata.google.internal": ["93.184.215.14"]})
    s = session(g)
    by_ip = s.get("http://169.254.169.254/latest/meta-data/")
    by_name = s.get("http://metadata.google.internal/computeMetadata/v1/")
    assert by_ip.status_code == by_name.status_code == 403
    assert "169.254.169.254 (cloud metadata)" in by_ip.json()["error"]["reason"]
    assert "cloud metadata name" in by_name.json()["error"]["reason"]
    assert g.upstream_attempts == []


def test_a_resolver_that_breaks_blocks_the_request(guard_proxy, upstream, tmp_path):
    g = guard_proxy(allow_rules(tmp_path))

    async def broken(name: str, port: int) -> list[str]:
        raise RuntimeError("resolver exploded")

    g.egress.resolve = broken
    r = session(g).get(f"http://docs.test:{upstream.port}/")
    assert r.status_code == 500 and r.json()["error"]["rule"] == "docs.allowed"
    assert "resolver exploded" in r.json()["error"]["message"]
    assert upstream.connections == 0 and g.upstream_attempts == []


def test_the_real_resolver_is_used_by_default(guard_proxy, upstream, tmp_path):
    g = guard_proxy(allow_rules(tmp_path))
    r = session(g).get(f"http://docs.test:{upstream.port}/")  # .test never resolves
    assert r.status_code == 403 and "docs.test does not resolve" in r.json()["error"]["reason"]


def test_a_host_header_that_disagrees_with_the_sni_is_refused(guard_proxy):
    g = guard_proxy()
    r = session(g).post("https://api.stripe.com/v1/customers", data={"email": "a@b.c"},
                        auth=("sk_test_1", ""), headers={"Host": "evil.example"})
    assert r.status_code == 403
    assert r.json()["error"]["rule"] == "guard.sni-mismatch"
    assert "Host evil.example does not match TLS SNI api.stripe.com" in r.json()["error"]["reason"]


class EventStream:
    """An SSE upstream that sends one event, then waits until the client has read it
    before it sends the last one: a buffering proxy can never deliver the first in time."""

    def __init__(self) -> None:
        self.first_read = threading.Event()
        self.client_read_before_end: bool | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self.wfile.write(b"data: one\n\n")
                self.wfile.flush()
                outer.client_read_before_end = outer.first_read.wait(30)
                self.wfile.write(b"data: two\n\n")
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_server_sent_events_of_an_allowed_host_are_streamed(guard_proxy, tmp_path):
    sse = EventStream()
    try:
        g = guard_proxy(allow_rules(tmp_path))
        g.egress.resolve = fake_dns({"docs.test": ["127.0.0.1"]})
        with session(g).get(f"http://docs.test:{sse.port}/events", stream=True,
                            timeout=60) as r:
            lines = r.iter_lines(chunk_size=1)  # hand over every byte at once
            assert next(lines) == b"data: one"
            sse.first_read.set()
            rest = [line for line in lines if line]
        assert rest == [b"data: two"]
        assert sse.client_read_before_end is True
    finally:
        sse.server.shutdown()
        sse.server.server_close()
