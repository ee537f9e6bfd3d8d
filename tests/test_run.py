"""`guard run` as a user starts it: a subprocess that prints where it listens and its CA."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def test_guard_run_prints_its_address_ca_and_client_settings_then_serves(tmp_path):
    confdir = tmp_path / "conf"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "run", "--listen-port", "0", "--confdir", str(confdir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "stripe.ca_bundle_path" in line or not line:
                break
        text = "".join(lines)
        ca = confdir / "mitmproxy-ca-cert.pem"
        assert "guard: listening on 127.0.0.1:" in text, text
        assert f"guard: CA certificate {ca}" in text and ca.exists()
        assert f"export REQUESTS_CA_BUNDLE={ca}" in text
        port = int(text.split("listening on 127.0.0.1:")[1].split()[0])
        s = requests.Session()
        s.trust_env = False
        r = s.get("https://nowhere.example/", proxies={"https": f"http://127.0.0.1:{port}"},
                  verify=str(ca))
        assert r.status_code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert proc.returncode == 0


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
