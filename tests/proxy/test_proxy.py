"""guard as a real proxy: simulate, block and allow through mitmproxy, and the gate that
keeps simulated and blocked calls from ever opening an upstream connection."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import requests

from guard.decision import DEFAULT_RULE_ID


def session(g) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no NO_PROXY surprises for loopback
    s.proxies = g.proxies
    s.verify = g.ca
    return s


def loopback_rules(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "loop.yaml"
    path.write_text(textwrap.dedent(f"""
        pack: loop
        hosts: ["127.0.0.1"]
        rules:
          - id: loop.allowed
            match: {{method: GET, path: /allowed}}
            action: allow
            allow_private: true   # the test upstream is on loopback
            ports: ["1024-65535"]  # (on an ephemeral port)
          - id: loop.simulated
            match: {{path: /simulated}}
            action: simulate
            respond: {{status: 201, body: {{port: {port}, q: "{{{{ request.query.q }}}}"}}}}
          - id: loop.blocked
            match: {{path: /blocked}}
            action: block
            reason: not today
          - id: loop.broken
            match: {{path: /broken}}
            action: simulate
            respond: {{body: {{x: "{{{{ 1 // 0 }}}}"}}}}
    """))
    return path


def test_an_unknown_host_gets_403_naming_the_default_rule(guard_proxy):
    g = guard_proxy()
    r = session(g).get("https://unknown.example.org/path")
    assert r.status_code == 403
    assert r.headers["X-Guard-Rule"] == DEFAULT_RULE_ID
    assert r.headers["X-Guard-Action"] == "block"
    assert r.json()["error"]["rule"] == DEFAULT_RULE_ID
    assert g.upstream_attempts == []


def test_allow_reaches_the_upstream_and_nothing_else_does(guard_proxy, upstream, tmp_path):
    g = guard_proxy(loopback_rules(tmp_path, upstream.port))
    s = session(g)
    base = f"http://127.0.0.1:{upstream.port}"

    sim = s.get(f"{base}/simulated?q=hi")
    blocked = s.get(f"{base}/blocked")
    assert (sim.status_code, sim.json()) == (201, {"port": upstream.port, "q": "hi"})
    assert blocked.status_code == 403 and "not today" in blocked.json()["error"]["message"]
    assert upstream.connections == 0

    allowed = s.get(f"{base}/allowed")
    assert allowed.json() == {"upstream": True, "path": "/allowed"}
    assert allowed.headers["X-Guard-Action"] == "allow"
    assert upstream.requests == [("GET", "/allowed")]
    # after an allowed request, simulated and blocked ones still never reach the server
    s.get(f"{base}/simulated?q=again")
    s.post(f"{base}/allowed")  # POST is not allowed: default deny
    assert upstream.requests == [("GET", "/allowed")]


def test_a_template_that_raises_blocks_only_that_request(guard_proxy, upstream, tmp_path):
    g = guard_proxy(loopback_rules(tmp_path, upstream.port))
    s = session(g)
    base = f"http://127.0.0.1:{upstream.port}"
    broken = s.get(f"{base}/broken")
    assert broken.status_code == 500
    error = broken.json()["error"]
    assert error["rule"] == "loop.broken" and "ZeroDivisionError" in error["message"]
    assert s.get(f"{base}/simulated?q=next").status_code == 201
    assert upstream.connections == 0


def test_raw_tcp_through_connect_is_refused(guard_proxy, upstream, tmp_path):
    g = guard_proxy(loopback_rules(tmp_path, upstream.port))
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\n\r\n".encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.sendall(b"\x00\x01binary protocol, not http or tls\r\n")
        sock.settimeout(5)
        try:
            while sock.recv(1024):
                pass
        except (ConnectionResetError, TimeoutError):
            pass
    assert upstream.connections == 0
    assert all(not permitted for *_, permitted in g.upstream_attempts)


def test_every_flow_is_audited_with_credentials_redacted(guard_proxy, tmp_path):
    audit = tmp_path / "audit.jsonl"
    g = guard_proxy(audit=audit)
    s = session(g)
    s.post("https://api.stripe.com/v1/customers", data={"email": "a@b.c"},
           auth=("sk_test_SECRET123", ""))
    s.get("https://unknown.example.org/", headers={"Cookie": "session=SECRETCOOKIE"})
    g.stop()
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["rule"], e["action"], e["status"], e["upstream"]) for e in events] == [
        ("stripe.customers.create", "simulate", 200, False),
        (DEFAULT_RULE_ID, "block", 403, False),
    ]
    text = audit.read_text()
    assert "SECRET123" not in text and "SECRETCOOKIE" not in text
    assert events[1]["prev"] == events[0]["hash"]


def test_guard_headers_can_be_turned_off(guard_proxy):
    g = guard_proxy(guard_headers=False)
    r = session(g).get("https://unknown.example.org/")
    assert r.status_code == 403 and "X-Guard-Rule" not in r.headers


def test_a_request_guard_cannot_even_read_is_blocked_and_audited(guard_proxy, tmp_path,
                                                                 monkeypatch):
    audit = tmp_path / "audit.jsonl"
    g = guard_proxy(audit=audit)

    def broken(*args):
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "unreadable request")

    monkeypatch.setattr(g.identity, "build", broken)  # what flows and the fast path call
    r = session(g).get("https://api.stripe.com/v1/customers")
    assert r.status_code == 500 and r.json()["error"]["rule"] == "guard.internal-error"
    assert g.upstream_attempts == []
    g.stop()
    (event,) = [json.loads(line) for line in audit.read_text().splitlines()]
    assert (event["action"], event["host"], event["status"]) == ("error", "api.stripe.com", 500)
