"""The fast path (the default; --no-fast-path turns it off): tunnels to hosts no rule
allows are served outside mitmproxy's layers, with the same decisions, answers and audit
events as through mitmproxy, over HTTP/1.1 and HTTP/2; everything else still goes through
mitmproxy. The rest of the suites run on it by default, and through mitmproxy's layers
with ``pytest --no-fast-path``."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests

from guard.proxy.embedded import RunningGuard
from tests.upstream import Upstream

VOLATILE = {"time", "duration_ms", "seq", "prev", "hash", "started"}


def session(g: RunningGuard) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies = g.proxies
    s.verify = g.ca
    return s


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def stable(event: dict[str, Any]) -> dict[str, Any]:
    """An event without what differs between two runs: times, the hash chain, and the
    fingerprints of redacted secrets (keyed per process)."""
    kept = {k: v for k, v in event.items() if k not in VOLATILE}
    return json.loads(re.sub(r"\[REDACTED:[0-9a-f]+\]", "[REDACTED]", json.dumps(kept)))


def fast(g: RunningGuard) -> int:
    assert g.master is not None and g.master.fast_path is not None
    return g.master.fast_path.served


def allow_rules(tmp_path: Path) -> tuple[Path, Path]:
    path, sim = tmp_path / "loop.yaml", tmp_path / "sim.yaml"
    path.write_text(textwrap.dedent("""
        pack: loop
        hosts: ["127.0.0.1"]
        rules:
          - id: loop.allowed
            match: {method: GET, path: /allowed}
            action: allow
            allow_private: true   # the test upstream is on loopback
            ports: ["443", "1024-65535"]
    """))
    sim.write_text(textwrap.dedent("""
        pack: sim
        hosts: [sim.test]
        rules:
          - id: sim.hello
            match: {method: GET, path: "/hello/{name}"}
            action: simulate
            respond: {status: 200, body: {hello: "{{ captures.name }}"}}
    """))
    return path, sim


def calls(client: Any) -> None:
    """The same requests, whichever way they go: simulated, refused, blocked, unknown."""
    auth = {"Authorization": "Bearer sk_test_fastpath"}
    client.post("https://api.stripe.com/v1/customers", headers=auth,
                data={"email": "jenny@example.com", "metadata[plan]": "pro"})
    client.get("https://api.stripe.com/v1/customers/cus_missing?expand[]=x", headers=auth)
    client.get("https://api.stripe.com/v1/customers/cus_missing",
               headers={"Authorization": "Bearer sk_live_nope"})
    client.post("https://api.stripe.com/v1/charges", headers=auth, data={"amount": "-1"})
    client.get("https://unknown.example.org/a/../b?x=1")
    client.delete("https://api.stripe.com/v1/customers/cus_missing", headers=auth)


class Curl:
    """curl through the proxy, one connection per request (HTTP/2 when asked: curl prefers
    h2 in its ALPN offer, so mitmproxy and the fast path both choose it)."""

    def __init__(self, g: RunningGuard, http2: bool) -> None:
        self.base = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                     "--proxy", g.url, "--cacert", g.ca, "--http2" if http2 else "--http1.1"]
        self.seen: list[str] = []

    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                data: dict[str, str] | None = None) -> None:
        cmd = [*self.base, "-X", method, url]
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        for k, v in (data or {}).items():
            cmd += ["--data-urlencode", f"{k}={v}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
        self.seen.append(out.stdout.split()[0])

    def get(self, url: str, **kw: Any) -> None:
        self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> None:
        self.request("POST", url, **kw)

    def delete(self, url: str, **kw: Any) -> None:
        self.request("DELETE", url, **kw)


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_the_fast_path_answers_and_audits_exactly_as_mitmproxy_does(
        guard_proxy, tmp_path: Path, http2: bool) -> None:
    via = {}
    for fast_path in (False, True):
        audit = tmp_path / f"audit-{fast_path}.jsonl"
        g = guard_proxy(seed=7, audit=audit, fast_path=fast_path)
        client = Curl(g, http2)
        calls(client)
        assert set(client.seen) == {"2" if http2 else "1.1"}
        if fast_path:
            assert fast(g) == len(client.seen)
        g.stop()
        via[fast_path] = [stable(e) for e in events(audit) if e.get("kind") == "flow"]
    assert len(via[True]) == 6
    for slow, quick in zip(via[False], via[True], strict=True):
        assert quick == slow


def test_a_simulated_host_is_served_on_the_fast_path_and_an_allowed_one_by_mitmproxy(
        guard_proxy, tmp_path: Path, upstream: Upstream) -> None:
    g = guard_proxy(*allow_rules(tmp_path), fast_path=True)
    s = session(g)
    r = s.get("https://sim.test/hello/ada")
    assert (r.status_code, r.json(), r.headers["X-Guard-Rule"]) == (200, {"hello": "ada"},
                                                                     "sim.hello")
    assert fast(g) == 1
    r = s.get(f"http://127.0.0.1:{upstream.port}/allowed")
    assert r.status_code == 200 and upstream.connections == 1
    assert fast(g) == 1  # plain HTTP and an allowed address: mitmproxy's
    assert g.upstream_attempts == [("127.0.0.1", upstream.port, True)]


def tunnel(g: RunningGuard, connect: str, sni: str | None) -> ssl.SSLSocket:
    """A TLS connection through a CONNECT to ``connect`` (host:port), naming ``sni``."""
    raw = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    raw.sendall(f"CONNECT {connect} HTTP/1.1\r\nHost: {connect}\r\n\r\n".encode())
    assert raw.recv(1024).startswith(b"HTTP/1.1 200")
    tls = ssl.create_default_context(cafile=g.ca)
    tls.check_hostname = False
    return tls.wrap_socket(raw, server_hostname=sni)


def exchange(sock: ssl.SSLSocket, request: bytes) -> bytes:
    sock.sendall(request)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            break
        if not chunk:
            break
        out += chunk
    return out


def test_host_and_sni_that_disagree_are_refused_on_the_fast_path(guard_proxy) -> None:
    g = guard_proxy(fast_path=True)
    sock = tunnel(g, "api.stripe.com:443", "api.stripe.com")
    out = exchange(sock, b"GET /v1/customers HTTP/1.1\r\nHost: evil.example\r\n"
                         b"Authorization: Bearer sk_test_x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403 ")
    assert b"X-Guard-Rule: guard.sni-mismatch" in out
    assert fast(g) == 1 and g.upstream_attempts == []


def test_a_request_allowed_inside_a_tunnel_to_a_simulated_host_is_refused_not_forwarded(
        guard_proxy, tmp_path: Path, upstream: Upstream) -> None:
    g = guard_proxy(*allow_rules(tmp_path), fast_path=True)
    # the tunnel is to a simulated host; TLS and Host name the allowed address
    sock = tunnel(g, "sim.test:443", None)
    out = exchange(sock, f"GET /allowed HTTP/1.1\r\nHost: 127.0.0.1:{upstream.port}\r\n"
                         "Connection: close\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 403 ")
    assert b"guard.egress-refused" in out
    assert upstream.connections == 0 and g.upstream_attempts == []


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\nContent-Length: 3\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"GET /v1/customers HTTP/1.1\r\nHost : api.stripe.com\r\n\r\n", 400),
    (b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n folded: yes\r\n\r\n", 400),
    (b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\nContent-Length: 1, 2\r\n\r\n",
     400),
    (b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\nTransfer-Encoding: gzip\r\n\r\n",
     501),
    (b"GET /v1/customers HTTP/3\r\nHost: api.stripe.com\r\n\r\n", 505),
    (b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\nExpect: magic\r\n\r\n", 417),
], ids=["cl-and-te", "space-before-colon", "folded", "two-lengths", "gzip-te", "http3",
        "expect"])
def test_a_malformed_request_gets_an_error_and_the_connection_ends(
        guard_proxy, tmp_path: Path, request_bytes: bytes, status: int) -> None:
    audit = tmp_path / "audit.jsonl"
    g = guard_proxy(fast_path=True, audit=audit)
    out = exchange(tunnel(g, "api.stripe.com:443", "api.stripe.com"), request_bytes)
    assert out.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"connection: close" in out
    assert not [e for e in events(audit) if e.get("kind") == "flow"]  # never decided


def test_a_chunked_body_and_keep_alive_work_on_one_connection(guard_proxy) -> None:
    g = guard_proxy(fast_path=True)
    sock = tunnel(g, "api.stripe.com:443", "api.stripe.com")
    body = b"email=a%40b.test"
    sock.sendall(b"POST /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n"
                 b"Authorization: Bearer sk_test_x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
                 + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    out = exchange(sock, b"GET /v1/customers?limit=1 HTTP/1.1\r\nHost: api.stripe.com\r\n"
                         b"Authorization: Bearer sk_test_x\r\nConnection: close\r\n\r\n")
    first, _, second = out.partition(b"HTTP/1.1 200 OK\r\n")[2].partition(b"HTTP/1.1 200 OK")
    assert b'"email":"a@b.test"' in first
    assert b'"a@b.test"' in second  # the list holds the customer just made
    assert fast(g) == 1


def test_an_unwritable_audit_log_fails_closed_on_the_fast_path(guard_proxy,
                                                               tmp_path: Path) -> None:
    g = guard_proxy(fast_path=True, audit=Path("/dev/full"))  # every write fails (ENOSPC)
    r = session(g).get("https://api.stripe.com/v1/customers/cus_x",
                       headers={"Authorization": "Bearer sk_test_x"})
    assert r.status_code == 503
    assert r.json()["error"]["rule"] == "guard.audit-unavailable"
    assert "No space left on device" in r.json()["error"]["message"]
    assert fast(g) == 1


@pytest.mark.parametrize("request_bytes, status, rule", [
    (b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\nX-Big: " + b"a" * 3000
     + b"\r\n\r\n", 431, "guard.header-too-large"),
    (b"GET /v1/" + b"a" * 2000 + b" HTTP/1.1\r\nHost: api.stripe.com\r\n\r\n", 414,
     "guard.url-too-long"),
    (b"POST /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\nContent-Length: 5000\r\n\r\n",
     413, "guard.limit.body-size"),
    (b"POST /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n1\r\na\r\n0\r\nX-Late: 1\r\n\r\n", 400, "guard.request-trailers"),
], ids=["headers", "url", "body", "trailers"])
def test_the_fast_path_refuses_under_the_same_named_limits_and_audits_it(
        guard_proxy, tmp_path: Path, request_bytes: bytes, status: int, rule: str) -> None:
    audit = tmp_path / "audit.jsonl"
    g = guard_proxy(fast_path=True, audit=audit, max_header_bytes=2048, max_url_bytes=1024,
                    max_body_size=4096)
    out = exchange(tunnel(g, "api.stripe.com:443", "api.stripe.com"), request_bytes)
    assert out.startswith(f"HTTP/1.1 {status} ".encode())
    assert f"X-Guard-Rule: {rule}".encode() in out
    (event,) = [e for e in events(audit) if e.get("kind") == "flow"]
    assert (event["rule"], event["status"], event["host"]) == (rule, status, "api.stripe.com")
    assert fast(g) == 1


def closed_by_guard(sock: socket.socket) -> bytes:
    """What guard writes until it closes the connection (the socket's timeout is a safety
    net, not a measure)."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            return out
        if not chunk:
            return out
        out += chunk


def test_tunnels_on_the_fast_path_count_against_the_connection_limit(guard_proxy,
                                                                     tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    g = guard_proxy(fast_path=True, audit=audit, max_client_connections=3,
                    header_timeout=60.0)
    held = [tunnel(g, "api.stripe.com:443", "api.stripe.com") for _ in range(3)]
    try:
        assert g.guard.limits.open["127.0.0.1"] == 3
        extra = socket.create_connection(("127.0.0.1", g.port), timeout=30)
        with extra:
            answer = closed_by_guard(extra)  # refused as it opens, before it sends a byte
        assert answer.startswith(b"HTTP/1.1 429 ") and b"guard.limit.connections" in answer
        [event] = [e for e in events(audit) if e["rule"] == "guard.limit.connections"]
        assert event["action"] == "block" and event["client"] == "127.0.0.1"
        out = exchange(held[0], b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n"
                                b"Authorization: Bearer sk_test_x\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 ")  # the held tunnels are served
    finally:
        for s in held:
            s.close()
    for _ in range(100):  # closed tunnels are not counted any more
        if g.guard.limits.open.get("127.0.0.1", 0) == 0:
            break
        exchange(tunnel(g, "api.stripe.com:443", "api.stripe.com"),
                 b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n"
                 b"Authorization: Bearer sk_test_x\r\nConnection: close\r\n\r\n")
    assert g.guard.limits.open.get("127.0.0.1", 0) == 0


@pytest.mark.parametrize("what", ["silent", "half-connect", "tunnel", "keep-alive", "h2"])
def test_the_header_timeout_closes_fast_path_connections(guard_proxy, tmp_path: Path,
                                                         what: str) -> None:
    """As through mitmproxy: a connection that sends no whole head within the timeout is
    closed (audited when it never sent one; a half-sent head gets a 408 first); inside a
    tunnel, and after an answer, it is closed quietly."""
    audit = tmp_path / "audit.jsonl"
    g = guard_proxy(fast_path=True, audit=audit, header_timeout=2.0)
    if what in ("silent", "half-connect"):
        sock: socket.socket = socket.create_connection(("127.0.0.1", g.port), timeout=30)
        if what == "half-connect":
            sock.sendall(b"CONNECT api.stripe.com:443 HTTP/1.1\r\nHost: api")
    elif what == "h2":
        raw = socket.create_connection(("127.0.0.1", g.port), timeout=30)
        raw.sendall(b"CONNECT api.stripe.com:443 HTTP/1.1\r\nHost: api.stripe.com\r\n\r\n")
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        tls = ssl.create_default_context(cafile=g.ca)
        tls.set_alpn_protocols(["h2"])
        sock = tls.wrap_socket(raw, server_hostname="api.stripe.com")
        assert sock.selected_alpn_protocol() == "h2"
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    else:
        sock = tunnel(g, "api.stripe.com:443", "api.stripe.com")
        if what == "keep-alive":
            sock.sendall(b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n"
                         b"Authorization: Bearer sk_test_x\r\n\r\n")
    with sock:
        out = closed_by_guard(sock)
    timed_out = [e for e in events(audit) if e["rule"] == "guard.limit.header-timeout"]
    if what == "half-connect":
        assert out.startswith(b"HTTP/1.1 408 ") and len(timed_out) == 1
    elif what == "silent":
        assert out == b"" and len(timed_out) == 1
    else:
        assert not timed_out  # a tunnel's: closed quietly
        if what == "keep-alive":
            assert out.startswith(b"HTTP/1.1 200 ") and out.count(b"HTTP/1.1 ") == 1
    assert fast(g) == (0 if what in ("silent", "half-connect") else 1)


def h2_tunnel(g: RunningGuard) -> Any:
    """An HTTP/2 client connection (h2, its own checks off) through a tunnel."""
    import h2.config
    import h2.connection

    raw = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    raw.sendall(b"CONNECT api.stripe.com:443 HTTP/1.1\r\nHost: api.stripe.com:443\r\n\r\n")
    assert raw.recv(1024).startswith(b"HTTP/1.1 200")
    tls = ssl.create_default_context(cafile=g.ca)
    tls.set_alpn_protocols(["h2"])
    sock = tls.wrap_socket(raw, server_hostname="api.stripe.com")
    assert sock.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False,
        normalize_outbound_headers=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def h2_answers(sock: ssl.SSLSocket, conn: Any) -> tuple[dict[int, int], bool]:
    """The statuses guard answered, by stream, until it closes the connection (or goes
    quiet), and whether it closed it."""
    import h2.events

    statuses: dict[int, int] = {}
    sock.settimeout(5)
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return statuses, False
        except (ConnectionError, ssl.SSLError):
            return statuses, True
        if not data:
            return statuses, True
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                statuses[event.stream_id] = int(dict(event.headers)[b":status"])
        sock.sendall(conn.data_to_send())


GOOD = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"api.stripe.com"),
        (b":path", b"/v1/customers"), (b"authorization", b"Bearer sk_test_x")]


@pytest.mark.parametrize("bad", [
    [(b"X-Upper", b"1")], [(b"connection", b"keep-alive")], [(b"x-a", b"a\r\nb")],
    [(b":unknown", b"1")], [(b"te", b"gzip")]])
def test_http2_headers_that_break_the_rules_end_the_connection_unanswered(
        guard_proxy, bad: list[tuple[bytes, bytes]]) -> None:
    """h2's checks of what a client sends hold on the fast path, for a header list it has
    seen before on the connection as for a new one."""
    g = guard_proxy(fast_path=True)
    sock, conn = h2_tunnel(g)
    with sock:
        conn.send_headers(1, GOOD, end_stream=True)  # checked, and remembered as good
        conn.send_headers(3, GOOD, end_stream=True)  # the same list again
        sock.sendall(conn.data_to_send())
        statuses, closed = h2_answers(sock, conn)
        assert statuses == {1: 200, 3: 200} and not closed
        conn.send_headers(5, GOOD + bad, end_stream=True)
        sock.sendall(conn.data_to_send())
        statuses, closed = h2_answers(sock, conn)
        assert statuses == {} and closed
