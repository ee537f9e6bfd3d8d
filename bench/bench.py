#!/usr/bin/env python3
"""Throughput of simulated HTTPS requests: guard vs stock mitmdump, in the same run.

Both proxies run as separate processes on loopback; a load generator with N
keep-alive HTTPS clients (threads, `requests` through the proxy) sends simulated
Stripe calls for a fixed time to each in turn. mitmdump runs a trivial addon
that answers every request with a fixed response (the least work a proxy that
answers by itself can do); guard matches its built-in rules, renders the Stripe
customer template, stores the object in the sandbox world and writes the audit
log. The figure to read is the ratio guard / mitmdump.

    python bench/bench.py [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent

FIXED_ADDON = '''
from mitmproxy import http
def request(flow):
    flow.response = http.Response.make(200, b'{"id":"cus_fixed","object":"customer"}',
                                       {"Content-Type": "application/json"})
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def load(port: int, ca: str, seconds: float, clients: int) -> tuple[int, int]:
    proxy = f"http://127.0.0.1:{port}"
    stop = time.time() + seconds
    counts = [0] * clients
    errors = [0] * clients

    def worker(i: int) -> None:
        s = requests.Session()
        s.trust_env = False
        s.proxies = {"https": proxy, "http": proxy}
        s.verify = ca
        s.headers["Authorization"] = "Bearer sk_test_bench"
        while time.time() < stop:
            r = s.post("https://api.stripe.com/v1/customers", data={"email": f"c{i}@x.test"})
            if r.status_code == 200:
                counts[i] += 1
            else:
                errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), sum(errors)


def run_one(name: str, cmd: list[str], port: int, ca: str, seconds: float,
            clients: int) -> float:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        wait_port(port)
        load(port, ca, 1.0, clients)  # warm up: TLS certs, imports, Faker
        done, errors = load(port, ca, seconds, clients)
    finally:
        proc.terminate()
        proc.wait(10)
    rate = done / seconds
    print(f"{name:10s} {rate:8.1f} req/s  ({done} ok, {errors} errors, {clients} clients, "
          f"{seconds:.0f} s)", flush=True)
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    mitmdump = shutil.which("mitmdump", path=os.path.dirname(sys.executable)) or "mitmdump"
    with tempfile.TemporaryDirectory() as tmp:
        confdir = Path(tmp) / "conf"
        addon = Path(tmp) / "fixed.py"
        addon.write_text(FIXED_ADDON)
        ca = str(confdir / "mitmproxy-ca-cert.pem")
        p1, p2 = free_port(), free_port()
        stock = run_one("mitmdump", [mitmdump, "-q", "--listen-port", str(p1), "--set",
                        f"confdir={confdir}", "--set", "connection_strategy=lazy",
                        "-s", str(addon)], p1, ca, args.seconds, args.clients)
        guard = run_one("guard", [sys.executable, "-m", "guard", "run", "-q", "--listen-port",
                        str(p2), "--confdir", str(confdir), "--audit",
                        str(Path(tmp) / "audit.jsonl")], p2, ca, args.seconds, args.clients)
    print(f"ratio guard/mitmdump: {guard / stock:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
