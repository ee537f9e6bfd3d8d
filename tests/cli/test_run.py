"""`guard run` as a user starts it: a subprocess that prints where it listens and its CA."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def start(confdir: Path, *args: str, env: dict[str, str] | None = None,
          last: str = "stripe.ca_bundle_path") -> tuple[subprocess.Popen[str], str, int]:
    """`guard run` in a subprocess: (process, banner, port) once the banner's ``last``
    line is out."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "run", "--listen-port", "0", "--confdir", str(confdir),
         *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if last in line or not line:
            break
    text = "".join(lines)
    assert "guard: listening on 127.0.0.1:" in text, text
    return proc, text, int(text.split("listening on 127.0.0.1:")[1].split()[0])


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGINT; the rest of what it printed."""
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, rest
    return rest


def get(port: int, ca: Path, url: str) -> requests.Response:
    s = requests.Session()
    s.trust_env = False
    return s.get(url, proxies={"https": f"http://127.0.0.1:{port}"}, verify=str(ca))


def test_guard_run_prints_its_address_ca_audit_log_worlds_and_client_settings_then_serves(
        tmp_path):
    confdir = tmp_path / "conf"
    proc, text, port = start(confdir)
    try:
        ca = confdir / "mitmproxy-ca-cert.pem"
        audit = confdir / "audit" / "audit.jsonl"
        assert f"rules, audit log {audit}" in text
        assert f"guard: CA certificate {ca}" in text and ca.exists()
        assert f"guard: audit log {audit} (guard audit tail -f;" in text
        assert f"guard: sandbox worlds journaled in {confdir / 'state'} (guard outbox;" in text
        assert f"export REQUESTS_CA_BUNDLE={ca}" in text
        assert "NODE_USE_ENV_PROXY=1" in text and "EnvHttpProxyAgent" in text
        assert get(port, ca, "https://nowhere.example/").status_code == 403
    finally:
        rest = stop(proc)
    # one line per request, as mitmdump prints
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} 127\.0\.0\.1 GET https://nowhere\.example/ "
                     r"block guard\.default-deny 403 [\d.]+m?s$", rest, re.M), rest
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [e["url"] for e in events if e.get("kind") == "flow"] == ["https://nowhere.example/"]


def test_log_format_json_prints_one_json_object_per_request(tmp_path):
    proc, _, port = start(tmp_path, "--log-format", "json", "--audit", "off", "--state", "off")
    try:
        get(port, tmp_path / "mitmproxy-ca-cert.pem", "https://nowhere.example/\u202e?q=1")
    finally:
        rest = stop(proc)
    lines = [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    assert [(e["method"], e["url"], e["rule"], e["status"]) for e in lines] == [
        ("GET", "https://nowhere.example/%E2%80%AE?q=1", "guard.default-deny", 403)]
    assert not (tmp_path / "audit").exists() and not (tmp_path / "state").exists()


def test_quiet_prints_one_banner_line_and_no_line_per_request(tmp_path):
    proc, text, port = start(tmp_path, "-q", "--audit", "off", last="listening on")
    try:
        assert text.count("\n") == 1 and "NO audit log (--audit off)" in text
        assert get(port, tmp_path / "mitmproxy-ca-cert.pem",
                   "https://nowhere.example/").status_code == 403
    finally:
        rest = stop(proc)
    assert "nowhere.example" not in rest


def test_an_audit_log_in_a_directory_that_does_not_exist_stops_start_up(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "guard", "run", "--audit", str(tmp_path / "no" / "a.jsonl"),
         "--listen-port", "0", "--confdir", str(tmp_path)], cwd=ROOT, capture_output=True,
        text=True, timeout=60)
    assert out.returncode == 1 and not (tmp_path / "no").exists()
    assert f"there is no directory {tmp_path / 'no'}" in out.stderr


def test_transparent_mode_on_loopback_says_that_redirect_cannot_reach_it(tmp_path):
    proc, text, _ = start(tmp_path, "--mode", "transparent", "--state", "off",
                          last="NODE_EXTRA_CA_CERTS")
    stop(proc)
    assert "iptables REDIRECT delivers to the address of the interface" in text
    assert "listen on 0.0.0.0 or the gateway address" in text


def test_guard_run_refuses_to_start_on_broken_rules(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pack: x\nrules: [\n")
    out = subprocess.run(
        [sys.executable, "-m", "guard", "run", "--rules", str(bad), "--listen-port", "0",
         "--confdir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"{bad}:3:1: invalid YAML" in out.stderr and "not starting" in out.stderr


def test_a_websocket_upgrade_is_decided_by_the_rules(guard_proxy, upstream):
    g = guard_proxy()
    with socket.create_connection(("127.0.0.1", g.port), timeout=10) as sock:
        sock.sendall(
            f"GET http://127.0.0.1:{upstream.port}/socket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{upstream.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .encode())
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 403") and "guard.default-deny" in head
    assert upstream.connections == 0
