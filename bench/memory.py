#!/usr/bin/env python3
"""guard's memory as sandboxes and requests add up: RSS of one ``guard run`` process.

Sandboxes are named by ``X-Guard-Sandbox`` tokens (``--sandbox-from header``); each
request is a read-only Stripe retrieve (``GET /v1/customers/cus_missing``, a 404 that
changes no world), so what grows is what guard keeps per sandbox and per flow: the world
itself, its live feed (the last 200 events), caches. Requests go round robin over the
sandboxes with curl over keep-alive tunnels; RSS (``VmRSS``) is read from /proc after
every tenth of the load.

    python bench/memory.py [--sandboxes 100] [--requests 20000] [--creates 0] [--parallel 8]

Read: RSS before and after, and the growth per sandbox and per request. Flat means the
last tenths add nothing once every sandbox's feed is full. ``--creates N`` then makes N
customers (``POST /v1/customers``, round robin over the same sandboxes, whose feeds are
full by then) and prints what the worlds hold: RSS per created object (the customer, its
``customer.created`` event, indexes and the change log).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench import free_port, run_load, start  # noqa: E402
from guard.sandbox import tokens  # noqa: E402

KEY = b"bench-memory-sandbox-key-0123456789"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def batch(port: int, ca: str, names: list[str], first: int, n: int, parallel: int,
          tmp: Path, create: bool = False) -> int:
    """Requests ``first`` .. ``first + n`` (round robin over ``names``): read-only retrieves
    (a 404), or customer creates (a 200) with ``create``; returns failures."""
    config = tmp / "batch.cfg"
    blocks = []
    for i in range(first, first + n):
        name = names[i % len(names)]
        # No cache-busting query: Stripe (and guard) refuse unknown parameters with a 400.
        request = (f'url = "https://api.stripe.com/v1/customers"\n'
                   f'data = "email=bench{i}@example.com&name=Bench+Customer+{i}"\n'
                   if create else 'url = "https://api.stripe.com/v1/customers/cus_missing"\n')
        blocks.append(request + f'output = "/dev/null"\nproxy = "http://127.0.0.1:{port}"\n'
                      f'cacert = "{ca}"\nheader = "Authorization: Bearer sk_test_bench"\n'
                      f'header = "X-Guard-Sandbox: {tokens.derive(name, KEY)}"\n'
                      'write-out = "%{http_code}\\n"\n')
    config.write_text("next\n".join(blocks))
    cmd = ["curl", "--no-progress-meter", "-K", str(config)]
    if parallel > 1:
        cmd[1:1] = ["--parallel", "--parallel-max", str(parallel)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.split()
    expected = "200" if create else "404"
    return sum(1 for code in out if code != expected) + (n - len(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sandboxes", type=int, default=100)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--creates", type=int, default=0,
                    help="then create this many customers and report RSS per object")
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--guard-arg", action="append", default=[],
                    help="extra argument for guard run (repeatable), "
                    "e.g. --guard-arg=--no-fast-path")
    args = ap.parse_args()
    names = [f"sb-{i:05d}" for i in range(args.sandboxes)]
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}: {args.sandboxes} sandboxes, {args.requests} requests",
          flush=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "key").write_bytes(KEY)
        port = free_port()
        proc = start([sys.executable, "-m", "guard", "run", "-q", "--listen-port", str(port),
                      "--confdir", str(tmp / "conf"), "--audit", str(tmp / "audit.jsonl"),
                      "--sandbox-from", "header", "--sandbox-key", str(tmp / "key"),
                      *args.guard_arg], port)
        ca = str(tmp / "conf" / "mitmproxy-ca-cert.pem")
        try:
            run_load(port, ca, 50, 4, tmp)  # the CA exists after the first TLS handshake
            failed = batch(port, ca, names[:1], 0, 50, 4, tmp)  # warm up: imports, caches
            if failed:
                raise RuntimeError(f"warm-up: {failed} requests did not get the Stripe 404")
            base = rss_mb(proc.pid)
            print(f"before: {base:7.1f} MB RSS", flush=True)
            step = max(1, args.requests // 10)
            done = 0
            samples: list[float] = []
            creates: list[float] = []
            while done < args.requests:
                n = min(step, args.requests - done)
                failed = batch(port, ca, names, done, n, args.parallel, tmp)
                done += n
                samples.append(rss_mb(proc.pid))
                print(f"{done:>7} requests: {samples[-1]:7.1f} MB RSS"
                      + (f"  ({failed} failed)" if failed else ""), flush=True)
            created = 0
            step = max(1, args.creates // 10)
            while created < args.creates:
                n = min(step, args.creates - created)
                failed = batch(port, ca, names, created, n, args.parallel, tmp, create=True)
                created += n
                creates.append(rss_mb(proc.pid))
                print(f"{created:>7} creates:  {creates[-1]:7.1f} MB RSS"
                      + (f"  ({failed} failed)" if failed else ""), flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    grown = samples[-1] - base
    per_request = args.requests / args.sandboxes
    print(f"grew {grown:.1f} MB: {grown * 1024 / args.sandboxes:.1f} KB per sandbox "
          f"({per_request:.0f} requests each), {grown * 1024 * 1024 / args.requests:.0f} bytes "
          f"per request; the last half added {samples[-1] - samples[len(samples) // 2 - 1]:.1f}"
          " MB")
    print(f"total {samples[-1]:.1f} MB RSS for {args.sandboxes} sandboxes x {per_request:.0f} "
          f"requests: {samples[-1] / 500:.2f} of the 500 MB issue 14 allows for 1,000 x 200")
    if creates:
        held = creates[-1] - samples[-1]
        print(f"{args.creates} customers created: +{held:.1f} MB, "
              f"{held * 1024 * 1024 / args.creates:.0f} bytes of RSS per created object "
              "(customer, its customer.created event, indexes, change log)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
