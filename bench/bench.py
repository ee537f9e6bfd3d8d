#!/usr/bin/env python3
"""Throughput of simulated HTTPS requests: guard vs stock mitmdump, in the same run.

Both proxies run as separate processes on loopback. The load generator is curl
(`--parallel`, keep-alive tunnels through the proxy), which costs the client
side little CPU, so the proxy is the bottleneck. Each round sends the same
number of simulated Stripe `POST /v1/customers` calls through each proxy in
turn; rounds alternate so that machine noise hits both alike.

- mitmdump runs a trivial addon that answers every request with a fixed
  response: the least work a proxy that answers by itself can do.
- guard matches its built-in rules, renders the Stripe customer, keeps it in
  the sandbox's world, and writes the hash-chained audit log.

The figure to read is the ratio guard / mitmdump (median of the rounds).

    python bench/bench.py [--requests 3000] [--parallel 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def load(port: int, ca: str, n: int, parallel: int, tmp: Path) -> tuple[float, int]:
    """Send n requests through the proxy; return (requests per second, failures)."""
    config = tmp / f"curl-{n}.cfg"
    if not config.exists():
        config.write_text("".join(
            f'url = "https://api.stripe.com/v1/customers?n={i}"\noutput = "/dev/null"\n'
            for i in range(n)))
    cmd = ["curl", "--no-progress-meter", "--parallel", "--parallel-max", str(parallel),
           "--proxy", f"http://127.0.0.1:{port}", "--cacert", ca,
           "-H", "Authorization: Bearer sk_test_bench", "-d", "email=jenny@example.com",
           "-K", str(config), "-w", "%{http_code}\n"]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    elapsed = time.perf_counter() - start
    codes = out.split()
    return len(codes) / elapsed, sum(1 for c in codes if c != "200") + (n - len(codes))


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    wait_port(port)
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000, help="per proxy per round")
    ap.add_argument("--parallel", type=int, default=8, help="concurrent connections")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("curl") is None:
        print("bench: needs curl", file=sys.stderr)
        return 2
    bindir = os.path.dirname(sys.executable)
    mitmdump = shutil.which("mitmdump", path=bindir) or "mitmdump"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        confdir = tmp / "conf"
        (tmp / "fixed.py").write_text(FIXED_ADDON)
        ca = str(confdir / "mitmproxy-ca-cert.pem")
        p1, p2 = free_port(), free_port()
        procs = {
            "mitmdump": (start([mitmdump, "-q", "--listen-port", str(p1), "--set",
                                f"confdir={confdir}", "--set", "connection_strategy=lazy",
                                "-s", str(tmp / "fixed.py")], p1), p1),
            "guard": (start([sys.executable, "-m", "guard", "run", "-q", "--listen-port",
                             str(p2), "--confdir", str(confdir), "--audit",
                             str(tmp / "audit.jsonl")], p2), p2),
        }
        rates: dict[str, list[float]] = {name: [] for name in procs}
        try:
            for _, port in procs.values():
                load(port, ca, 200, args.parallel, tmp)  # warm up: certificates, imports
            for r in range(args.rounds):
                for name, (_, port) in procs.items():
                    rate, failed = load(port, ca, args.requests, args.parallel, tmp)
                    rates[name].append(rate)
                    print(f"round {r + 1}  {name:9s} {rate:7.1f} req/s"
                          + (f"  ({failed} failed)" if failed else ""), flush=True)
        finally:
            for proc, _ in procs.values():
                proc.terminate()
                proc.wait(10)
    stock, guard = statistics.median(rates["mitmdump"]), statistics.median(rates["guard"])
    print(f"median: mitmdump {stock:.1f} req/s, guard {guard:.1f} req/s, "
          f"ratio guard/mitmdump {guard / stock:.2f} "
          f"({args.requests} requests x {args.rounds} rounds, {args.parallel} parallel)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
