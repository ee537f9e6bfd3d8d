#!/usr/bin/env python3
"""Simulated HTTPS requests: guard vs stock mitmdump, in the same run, per CPU-second.

Both proxies run as separate processes on loopback. The load generator is curl
(keep-alive HTTP/2 tunnels through the proxy; one curl process per connection), or with
``--client lean`` bench/loadgen.py's Python client (HTTP/1.1, about a third of curl's CPU
per request); the per-CPU-second figure counts only the proxy's CPU. Each round sends
the same number of simulated Stripe ``POST /v1/customers`` calls through each proxy in
turn, at 1 and at 16 connections; rounds alternate so that machine noise hits both alike.

- mitmdump runs a trivial addon that answers every request with a fixed
  response: the least work a proxy that answers by itself can do.
- guard does its full work: matches its built-in rules, runs the Stripe handler,
  keeps the customer in the sandbox's world, and writes the redacted, hash-chained
  audit log.

The figure to read is **requests per CPU-second of the proxy process** (user + system
time of all its threads, from /proc), guard / mitmdump: what one core of each proxy
serves, and far steadier than requests per second on a shared machine. Beside it: the
req/s ratio and, at one connection, the p50 latency each proxy adds (the client's total time
per request). Medians of the rounds.

    python bench/bench.py [--requests 2000] [--rounds 3] [--connections 1,16]
                          [--client curl|lean]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import loadgen  # noqa: E402

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and all its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    rate: float  # requests per second (wall)
    per_cpu: float  # requests per CPU-second of the proxy
    p50_ms: float  # the client's median time per request
    failed: int
    client_ms: float = 0.0  # the client's CPU per request (ms)


def run_load(port: int, ca: str, n: int, parallel: int, tmp: Path,
             pid: int | None = None, client: str = "curl") -> Round:
    """Send ``n`` requests through the proxy over ``parallel`` keep-alive connections.

    One client process per connection (bench/loadgen.py), each sending its share one after
    another over its own tunnel: ``curl --parallel`` would multiplex all its transfers as
    streams of ONE HTTP/2 connection, which is one connection to the proxy however many
    it is told."""
    cpu = cpu_seconds(pid) if pid else 0.0
    got = loadgen.run(client, [port], ca, n, parallel, tmp=tmp)
    used = cpu_seconds(pid) - cpu if pid else 0.0
    return Round(got.rate, got.done / used if used else 0.0, got.p50_ms, got.failed,
                 got.cpu_ms)


def load(port: int, ca: str, n: int, parallel: int, tmp: Path) -> tuple[float, int]:
    """Requests per second and failures."""
    r = run_load(port, ca, n, parallel, tmp)
    return r.rate, r.failed


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    wait_port(port)
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="per proxy per round")
    ap.add_argument("--connections", default="1,16", help="comma-separated connection counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--guard-arg", action="append", default=[],
                    help="extra argument for guard run (repeatable)")
    ap.add_argument("--client", choices=loadgen.CLIENTS, default="curl",
                    help="the load generator (bench/loadgen.py): curl (HTTP/2, the figures "
                    "published so far) or lean (Python, HTTP/1.1, a third of curl's CPU)")
    args = ap.parse_args()
    if args.client == "curl" and shutil.which("curl") is None:
        print("bench: needs curl", file=sys.stderr)
        return 2
    connections = [int(c) for c in args.connections.split(",")]
    bindir = os.path.dirname(sys.executable)
    mitmdump = shutil.which("mitmdump", path=bindir) or "mitmdump"
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}", flush=True)
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
                             str(tmp / "audit.jsonl"), *args.guard_arg], p2), p2),
        }
        results: dict[tuple[str, int], list[Round]] = {}
        try:
            for proc, port in procs.values():
                # warm up: certificates, imports
                run_load(port, ca, 300, 8, tmp, client=args.client)
                if proc.poll() is not None:
                    raise RuntimeError("a proxy exited during warm-up")
            for r in range(args.rounds):
                for conns in connections:
                    for name, (proc, port) in procs.items():
                        got = run_load(port, ca, args.requests, conns, tmp, proc.pid,
                                       args.client)
                        results.setdefault((name, conns), []).append(got)
                        print(f"round {r + 1}  {conns:>2} conn  {name:9s} {got.rate:7.1f} req/s"
                              f"  {got.per_cpu:7.1f} req/CPU-s  p50 {got.p50_ms:6.2f} ms  client "
                              f"{got.client_ms:.2f} ms CPU/req"
                              + (f"  ({got.failed} failed)" if got.failed else ""), flush=True)
        finally:
            for proc, _ in procs.values():
                proc.terminate()
                proc.wait(10)
    print(f"medians of {args.rounds} rounds x {args.requests} requests "
          "(guard / mitmdump; > 1 means guard is faster):")
    for conns in connections:
        stock, guard = results[("mitmdump", conns)], results[("guard", conns)]

        def med(rounds: list[Round], attr: str) -> float:
            return float(statistics.median(getattr(x, attr) for x in rounds))

        line = (f"  {conns:>2} connection{'s' if conns > 1 else ' '}: per CPU-second "
                f"{med(guard, 'per_cpu') / med(stock, 'per_cpu'):.2f} "
                f"({med(guard, 'per_cpu'):.0f} vs {med(stock, 'per_cpu'):.0f} req/CPU-s), "
                f"req/s {med(guard, 'rate') / med(stock, 'rate'):.2f} "
                f"({med(guard, 'rate'):.0f} vs {med(stock, 'rate'):.0f})")
        if conns == 1:
            line += (f", p50 latency {med(guard, 'p50_ms'):.2f} vs {med(stock, 'p50_ms'):.2f} ms"
                     f" (guard adds {med(guard, 'p50_ms') - med(stock, 'p50_ms'):+.2f} ms)")
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
