"""An allowed host that cannot be reached is answered as guard answers everything else:
JSON naming rule guard.upstream-failed (and the allow rule), audited with the error, never
mitmproxy's HTML 502 page. Through a real guard, with requests and with curl over HTTP/2."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

RULES = """\
pack: upfail
hosts: ["127.0.0.1"]
rules:
  - id: upfail.loopback
    match: {path: "/**"}
    action: allow
    allow_private: true
    ports: ["1-65535"]
  - id: upfail.sim
    hosts: [sim.test]
    match: {path: /ok}
    action: simulate
    respond: {status: 200, body: {ok: true}}
"""


@pytest.fixture
def guard_with_dead_upstream(guard_proxy, tmp_path: Path):
    rules = tmp_path / "upfail.yaml"
    rules.write_text(RULES)
    return guard_proxy(rules, builtin=False), free_port()  # nothing listens on the port


class Hangup:
    """An upstream that reads the request and closes the connection without answering
    (what a plain-HTTP server does to a TLS handshake is alike: no response)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.seen = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.seen += 1
            c.recv(65536)
            c.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_upstream_that_hangs_up_without_answering_gets_the_same_json(guard_proxy,
                                                                         tmp_path, scheme):
    rules = tmp_path / "upfail.yaml"
    rules.write_text(RULES)
    g = guard_proxy(rules, builtin=False)
    up = Hangup()
    try:
        s = requests.Session()
        s.trust_env = False
        s.proxies, s.verify = g.proxies, g.ca
        r = s.get(f"{scheme}://127.0.0.1:{up.port}/docs")
    finally:
        up.sock.close()
    assert up.seen >= 1  # it did connect
    assert r.status_code == 502 and r.json()["error"]["rule"] == "guard.upstream-failed"
    [failed] = flows(g)
    assert failed["rule"] == "upfail.loopback" and failed["error"].startswith(
        "upstream failed: ")


def flows(g) -> list[dict]:
    return [e for e in (json.loads(x) for x in Path(g.cfg.audit).read_text().splitlines())
            if e.get("kind") == "flow"]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_dead_upstream_is_a_guard_json_error_under_a_named_rule(guard_with_dead_upstream,
                                                                   scheme):
    g, port = guard_with_dead_upstream
    s = requests.Session()
    s.trust_env = False
    s.proxies, s.verify = g.proxies, g.ca
    r = s.get(f"{scheme}://127.0.0.1:{port}/docs")
    assert r.status_code == 502
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Guard-Rule"] == "guard.upstream-failed"
    err = r.json()["error"]
    assert (err["type"], err["rule"], err["allowed_by"]) == (
        "guard_upstream_failed", "guard.upstream-failed", "upfail.loopback")
    assert f"127.0.0.1:{port}" in err["message"] and "<html" not in r.text
    # the connection goes on serving
    assert s.get(f"{scheme}://sim.test/ok").json() == {"ok": True}
    [failed, ok] = flows(g)
    assert (failed["rule"], failed["action"], failed["status"], failed["upstream"]) == (
        "upfail.loopback", "allow", 502, False)
    assert failed["error"].startswith("upstream failed: ") and ok["rule"] == "upfail.sim"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_over_http2_gets_the_same_json(guard_with_dead_upstream):
    g, port = guard_with_dead_upstream
    proc = subprocess.run(["curl", "-sS", "--http2", "--proxy", g.proxies["https"],
                           "--cacert", g.ca, "-D", "-", f"https://127.0.0.1:{port}/docs"],
                          capture_output=True, text=True, timeout=60)
    head, _, body = proc.stdout.rpartition("\n\n")  # text mode: CRLF read as \n
    assert "HTTP/2 502" in head, proc.stderr and "content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["rule"] == "guard.upstream-failed"
