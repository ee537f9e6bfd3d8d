"""``allow`` rules mean exactly what they say, through a real proxy and against a counting
upstream: one path form for matching (and forwarding), ambiguous paths refused, read-only
rules stay read-only (no upgrades, method overrides or GET bodies), only the web ports
unless a rule names others, and no proxy or hop-by-hop header goes upstream.

Requests are written byte for byte on a socket (clients such as requests and curl clean
paths up before sending them; an agent need not).
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import wsproto
import wsproto.events as ws

from guard.options import Options
from guard.proxy.embedded import RunningGuard
from tests.stores import session_store
from tests.upstream import Upstream


class Lab:
    """One guard for the module, with a counting upstream and a WebSocket echo server."""

    def __init__(self, tmp: Path, confdir: Path) -> None:
        self.upstream = Upstream()
        self.echo = EchoServer()
        up, echo = self.upstream.port, self.echo.port
        rules = tmp / "allow.yaml"
        rules.write_text(textwrap.dedent(f"""
            pack: lab
            rules:
              - id: lab.public
                hosts: [docs.test]
                match: {{method: [GET, HEAD], path: /public/**}}
                action: allow
                allow_private: true      # the upstream is on loopback
                ports: [{up}]
              - id: lab.admin
                hosts: [docs.test]
                match: {{path: /public/admin/**}}
                action: block
                priority: 10
              - id: lab.raw
                hosts: [raw.test]
                action: allow
                allow_private: true
                ports: [{up}]
                ambiguous_paths: allow
              - id: lab.web-ports
                hosts: [web.test]
                action: allow
                allow_private: true      # no ports: 443 and 80 only
              - id: lab.socket
                hosts: [ws.test]
                match: {{method: GET, path: /chat}}
                action: allow
                allow_private: true
                ports: [{echo}]
                websocket: true
              - id: lab.no-socket
                hosts: [nows.test]
                action: allow
                allow_private: true
                ports: [{echo}]
        """))
        self.audit = tmp / "audit.jsonl"
        cfg = Options(rules=[str(rules)], listen_port=0, confdir=confdir, quiet=True,
                      audit=self.audit, store=session_store())
        self.guard = RunningGuard(cfg).__enter__()

        async def resolve(name: str, port: int) -> list[str]:
            return ["127.0.0.1"] if name.endswith(".test") else []

        self.guard.egress.resolve = resolve

    def close(self) -> None:
        self.guard.stop()
        self.upstream.close()
        self.echo.close()

    def send(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Write ``request`` to the proxy as is; the status, headers and body."""
        with socket.create_connection(("127.0.0.1", self.guard.port), timeout=20) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                if sep and b"content-length" in head.lower():
                    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                                      if line.lower().startswith(b"content-length")))
                    if len(body) >= length:
                        break
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body

    def get(self, host: str, path: str, *extra: str, method: str = "GET",
            port: int | None = None, body: bytes = b"") -> tuple[int, str, bytes]:
        """A plain-HTTP proxy request for ``path`` exactly; (status, guard rule, body)."""
        port = port or self.upstream.port
        lines = [f"{method} http://{host}:{port}{path} HTTP/1.1", f"Host: {host}:{port}",
                 "Connection: close", *extra]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
        status, headers, content = self.send(raw)
        return status, headers.get("x-guard-rule", ""), content


class EchoServer:
    """A WebSocket server on loopback that echoes every message, counting connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        parts: list[str] = []
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                server.receive_data(data)
                for event in server.events():
                    if isinstance(event, ws.Request):
                        conn.sendall(server.send(ws.AcceptConnection()))
                    elif isinstance(event, ws.TextMessage):
                        parts.append(event.data)
                        if event.message_finished:
                            text, parts[:] = "".join(parts), []
                            conn.sendall(server.send(ws.Message(data=f"echo {text}")))
                    elif isinstance(event, ws.CloseConnection):
                        conn.sendall(server.send(event.response()))
                        return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    confdir = tmp_path_factory.mktemp("allowconf")
    lab = Lab(tmp_path_factory.mktemp("allow"), confdir)
    yield lab
    lab.close()


def arrived(lab: Lab, since: int) -> list[str]:
    return [path for _, path in lab.upstream.requests[since:]]


# /public/** allowed, /public/admin/** blocked: the examples of the issue, and variants
@pytest.mark.parametrize(("path", "rule"), [
    ("/public//admin/x", "guard.ambiguous-path"),
    ("/public/admin//x", "lab.admin"),  # (blocked by its rule before any check)
    ("//public/admin/x", "guard.default-deny"),
    ("/public/./admin/x", "lab.admin"),
    ("/public/././admin/x", "lab.admin"),
    ("/public/%61dmin/x", "lab.admin"),
    ("/public/%61%64%6d%69%6e/x", "lab.admin"),
    ("/%70ublic/admin/x", "lab.admin"),
    ("/public/admin;x/y", "guard.ambiguous-path"),
    ("/public;x/admin/y", "guard.default-deny"),  # (not under /public/ at all)
    ("/public/x/../admin/y", "lab.admin"),
    ("/public/x/y/../../admin/z", "lab.admin"),
    ("/public/admin%2Fx", "guard.ambiguous-path"),
    ("/public%2Fadmin/x", "guard.default-deny"),  # (not under /public/ at all)
    ("/public/admin%2fx", "guard.ambiguous-path"),
    ("/public/admin./x", "guard.ambiguous-path"),
    ("/public/admin%20/x", "guard.ambiguous-path"),
    ("/public\\admin\\x", "guard.default-deny"),  # (not under /public/ at all)
    ("/public/x/..\\admin", "guard.ambiguous-path"),
    ("/public%5cadmin/x", "guard.default-deny"),  # (not under /public/ at all)
    ("/public/%2e/admin/x", "lab.admin"),  # (decoded for matching: the block rule holds)
    ("/public/%2e%2e/public/admin/x", "lab.admin"),
    ("/public/x/%2e%2e/admin/y", "lab.admin"),
    ("/public/%2e%2e%2fadmin", "guard.ambiguous-path"),
    ("/public/%252e%252e/admin", "guard.ambiguous-path"),
    ("/public/%c0%ae%c0%ae/admin/x", "guard.ambiguous-path"),  # overlong UTF-8 '..'
    ("/public/%c0%af../admin", "guard.ambiguous-path"),  # overlong '/'
    ("/public/%e0%80%ae%e0%80%ae/admin", "guard.ambiguous-path"),
    ("/public/%ff/x", "guard.ambiguous-path"),
    ("/public/%00/x", "guard.ambiguous-path"),
    ("/public/../secret", "guard.default-deny"),
    ("/public/../../secret", "guard.default-deny"),
    ("/public/x/../../secret", "guard.default-deny"),
])
def test_paths_that_reach_what_a_rule_blocks_or_only_look_allowed_never_go_upstream(
        lab, path, rule):
    before = len(lab.upstream.requests)
    status, got, body = lab.get("docs.test", path)
    assert (status, got) == (403, rule), body
    assert arrived(lab, before) == []
    if rule == "guard.ambiguous-path":
        assert "ambiguous_paths: allow" in json.loads(body)["error"]["reason"]


@pytest.mark.parametrize(("path", "forwarded"), [
    ("/public/x", "/public/x"),
    ("/public/./x", "/public/x"),
    ("/public/a/../x", "/public/x"),
    ("/public/%7euser/%5f", "/public/~user/_"),
    ("/public/caf%c3%a9", "/public/caf%C3%A9"),
    ("/public/x?q=%2F..%2f&a=b", "/public/x?q=%2F..%2f&a=b"),  # the query is not a path
])
def test_allowed_paths_are_forwarded_in_the_form_they_were_decided_on(lab, path, forwarded):
    before = len(lab.upstream.requests)
    status, rule, _ = lab.get("docs.test", path)
    assert (status, rule) == (200, "lab.public")
    assert arrived(lab, before) == [forwarded]


def test_a_rule_may_let_ambiguous_paths_through_unchanged(lab):
    before = len(lab.upstream.requests)
    status, rule, _ = lab.get("raw.test", "/a%2Fb/c;v=1//d")
    assert (status, rule) == (200, "lab.raw")
    assert arrived(lab, before) == ["/a%2Fb/c;v=1//d"]


@pytest.mark.parametrize(("extra", "method", "body", "rule"), [
    (("X-HTTP-Method-Override: DELETE",), "GET", b"", "guard.method-override"),
    (("X-HTTP-Method: PUT",), "GET", b"", "guard.method-override"),
    (("X-Method-Override: POST",), "GET", b"", "guard.method-override"),
    (("Content-Length: 45",), "GET", b'{"method": "DELETE", "path": "/public/admin"}',
     "guard.read-with-body"),
    (("Content-Length: 2",), "HEAD", b"{}", "guard.read-with-body"),
    (("Transfer-Encoding: chunked",), "GET", b"2\r\n{}\r\n0\r\n\r\n", "guard.read-with-body"),
    (("Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13"), "GET", b"", "guard.upgrade-refused"),
])
def test_a_read_only_rule_lets_nothing_but_reads_through(lab, extra, method, body, rule):
    before = len(lab.upstream.requests)
    status, got, answer = lab.get("docs.test", "/public/x", *extra, method=method, body=body)
    assert (status, got) == (403, rule), answer
    assert arrived(lab, before) == []


def test_an_h2c_upgrade_never_reaches_the_server(lab):
    before = len(lab.upstream.requests)
    status, rule, _ = lab.get("docs.test", "/public/x", "Upgrade: h2c",
                              "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
                              "Connection: Upgrade, HTTP2-Settings")
    if status == 403:
        assert rule == "guard.upgrade-refused"
    else:  # (mitmproxy may drop the upgrade itself: then a plain GET is all that arrives)
        assert (status, arrived(lab, before)) == (200, ["/public/x"])
        received = {name.lower() for name, _ in lab.upstream.headers[-1]}
        assert not received & {"upgrade", "http2-settings"}, received


def test_a_method_override_in_the_query_is_refused(lab):
    status, rule, _ = lab.get("docs.test", "/public/x?_method=DELETE")
    assert (status, rule) == (403, "guard.method-override")


def test_an_allow_rule_opens_the_web_ports_only_unless_it_names_others(lab):
    before = len(lab.upstream.requests)
    status, rule, body = lab.get("web.test", "/", port=lab.upstream.port)
    assert (status, rule) == (403, "guard.port-refused")
    assert "443, 80" in json.loads(body)["error"]["reason"]
    for port in (6379, 25, 9200):
        assert lab.get("docs.test", "/public/x", port=port)[:2] == (403, "guard.port-refused")
    assert arrived(lab, before) == []
    assert not [a for a in lab.guard.upstream_attempts if a[1] in (6379, 25, 9200) and a[2]]


def test_a_connect_to_another_port_reaches_nothing(lab):
    before = len(lab.upstream.requests)
    for payload in (b"GET /public/x HTTP/1.1\r\nHost: docs.test:9200\r\nConnection: close\r\n\r\n",
                    b"*1\r\n$4\r\nPING\r\n"):  # HTTP in the tunnel, then Redis' protocol
        with socket.create_connection(("127.0.0.1", lab.guard.port), timeout=20) as s:
            s.sendall(b"CONNECT docs.test:9200 HTTP/1.1\r\nHost: docs.test:9200\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
            s.sendall(payload)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer == b"" or b"guard.port-refused" in answer
    assert arrived(lab, before) == []
    # (raw TCP in the tunnel makes mitmproxy ask; the egress gate refuses before any socket)
    assert not [a for a in lab.guard.upstream_attempts if a[1] == 9200 and a[2]]


def test_proxy_credentials_and_hop_by_hop_headers_never_reach_the_server(lab):
    before = len(lab.upstream.requests)
    status, rule, _ = lab.get(
        "docs.test", "/public/x", "Proxy-Authorization: Basic YWdlbnQ6c2VjcmV0",
        "Proxy-Connection: keep-alive", "Keep-Alive: timeout=5", "TE: deflate",
        "Trailer: X-Checksum", "X-Hop: mine", "Connection: close, X-Hop",
        "Proxy-Authenticate: Basic", "X-Kept: yes")
    assert (status, rule) == (200, "lab.public")
    assert arrived(lab, before) == ["/public/x"]
    received = {name.lower() for name, _ in lab.upstream.headers[-1]}
    assert not received & {"proxy-authorization", "proxy-connection", "keep-alive", "te",
                           "trailer", "x-hop", "proxy-authenticate"}, received
    assert "x-kept" in received


def websocket(lab: Lab, host: str, messages: list[str]) -> tuple[int, list[str]]:
    """Open a WebSocket to ``host`` through the proxy; (handshake status, echoes)."""
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    target = f"{host}:{lab.echo.port}"
    with socket.create_connection(("127.0.0.1", lab.guard.port), timeout=20) as s:
        request = client.send(ws.Request(host=target, target="/chat"))
        # absolute-form request line for the proxy
        s.sendall(request.replace(b"GET /chat ", f"GET http://{target}/chat ".encode(), 1))
        data = s.recv(65536)
        status = int(data.split(b" ", 2)[1])
        if status != 101:
            return status, []
        client.receive_data(data)
        list(client.events())
        echoes: list[str] = []
        part = ""
        for n, message in enumerate(messages, 1):
            s.sendall(client.send(ws.Message(data=message)))
            while len(echoes) < n:
                client.receive_data(s.recv(65536))
                for e in client.events():
                    if isinstance(e, ws.TextMessage):
                        part += e.data
                        if e.message_finished:
                            echoes.append(part)
                            part = ""
        s.sendall(client.send(ws.CloseConnection(code=1000)))
    return status, echoes


def test_a_websocket_goes_through_only_a_rule_that_says_so_and_every_message_is_audited(lab):
    before = lab.echo.connections
    assert websocket(lab, "nows.test", ["hello"]) == (403, [])
    assert lab.echo.connections == before
    secret = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
    status, echoes = websocket(lab, "ws.test", ["hello", f"key={secret}", "x" * 200_000])
    assert status == 101 and echoes[:2] == ["echo hello", f"echo key={secret}"]
    assert len(echoes) == 3
    events = [json.loads(line) for line in lab.audit.read_text().splitlines()]
    frames = [e for e in events if e.get("kind") == "websocket"]
    assert [(f["direction"], f["size"]) for f in frames] == [
        ("client", 5), ("server", 10), ("client", 4 + len(secret)),
        ("server", 9 + len(secret)), ("client", 200_000), ("server", 200_005)]
    assert all(f["host"] == "ws.test" and f["rule"] == "lab.socket" for f in frames)
    text = json.dumps(frames)
    assert secret not in text and "4eC39HqLyjWDarjtT1zdp7dc" not in text
    assert frames[4]["body"]["truncated"] is True and len(text) < 200_000
    upgrade = [e for e in events if e.get("host") == "nows.test"]
    assert upgrade and upgrade[-1]["rule"] == "guard.upgrade-refused"
