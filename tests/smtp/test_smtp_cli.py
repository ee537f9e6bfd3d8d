"""`guard run --smtp-port` as a user starts it: the banner names the sink, smtplib uses it,
and `guard outbox` then shows the message from the journaled state."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from guard.cli import main

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_guard_run_with_an_smtp_port_serves_the_sink_and_the_outbox_sees_it(tmp_path, capsys):
    port, state = free_port(), tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "run", "--listen-port", "0", "--confdir",
         str(tmp_path / "conf"), "--smtp-port", str(port), "--state", str(state),
             "--store", "memory:"],  # --state journals the in-process store
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "stripe.ca_bundle_path" in line or not line:
                break
        text = "".join(lines)
        assert f"guard: SMTP sink SMTP 127.0.0.1:{port} (STARTTLS)" in text, text
        assert f"guard outbox --state {state}" in text
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("cron@example.com", ["ops@example.com"],
                          b"Subject: nightly report\r\n\r\nall green\r\n")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert proc.returncode == 0

    assert main(["outbox", "--state", str(state), "--provider", "smtp"]) == 0
    out = capsys.readouterr().out
    assert "ops@example.com" in out and "nightly report" in out and "1 message(s)" in out


def test_a_taken_smtp_port_stops_guard_with_a_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "guard", "run", "--listen-port", "0", "--confdir",
             str(tmp_path), "--smtp-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "guard: stopped:" in out.stderr and str(port) in out.stderr
