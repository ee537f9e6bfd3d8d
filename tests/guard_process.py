"""``guard run`` as a real separate process, for tests that need several guards at once
(mitmproxy keeps per-process globals, so two proxies in one process are not two replicas)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


class GuardProcess:
    def __init__(self, confdir: Path, audit: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guard", "run", "--listen-port", "0", "--confdir",
             str(confdir), "--audit", str(audit), "--no-reload", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.ca = str(confdir / "mitmproxy-ca-cert.pem")
        lines = []
        deadline = time.time() + 60
        port = None
        assert self.proc.stdout is not None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.match(r"guard: listening on [^:]+:(\d+)", line)
            if m:
                port = int(m.group(1))
            if "stripe.ca_bundle_path" in line or (m and "-q" in args):
                break  # the banner's last line (with -q, its only one)
        if port is None:
            self.kill()
            raise RuntimeError("guard did not start:\n" + "".join(lines))
        self.port = port
        self.banner = "".join(lines)
        admin = re.search(r"guard: admin API on (\S+)", self.banner)
        self.admin_url = admin.group(1) if admin else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def session(self, **headers: str) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # this guard and its CA only, whatever the environment says
        s.proxies = {"http": self.url, "https": self.url}
        s.verify = self.ca
        s.headers.update(headers)
        return s

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, as a crashed replica does."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
