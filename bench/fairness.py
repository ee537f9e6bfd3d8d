#!/usr/bin/env python3
"""One sandbox's whole-world requests against another sandbox's latency, in one run.

Every sandbox's world starts as a fork of one seed world of ``--customers`` Stripe
customers (``guard run --world``; a fork copies nothing). A *light* sandbox (client
127.0.0.1) sends simulated ``POST /v1/customers`` one after another, first alone, then
while a *heavy* sandbox (127.0.0.2, its own process) sends ``GET /v1/customers/search``
in a loop over ``--heavy`` connections: each search reads all its customers. Printed: the
light sandbox's latency (p50, p99, max) alone and beside the heavy one, their ratio, and
how long one search took. Both clients are lean HTTP/1.1 over keep-alive tunnels
(bench/loadgen.py) and share the machine's cores with guard.

    python bench/fairness.py [--customers 25000] [--requests 400] [--heavy 2]

A request that read a whole world used to run to its end on the event loop every sandbox
shares; now its scans take turns every 2 ms (guard/world/bridge.py, docs/worlds.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from loadgen import REQUEST, Reader, read_response, tunnel  # noqa: E402

from bench import free_port, wait_port  # noqa: E402

SEARCH = (b"GET /v1/customers/search?query=email%3A%27nobody%40example.com%27 HTTP/1.1\r\n"
          b"Host: api.stripe.com\r\nAuthorization: Bearer sk_test_bench\r\n\r\n")


def seed(path: Path, n: int) -> None:
    customers = {}
    for i in range(n):
        cid = f"cus_seed{i:07d}"
        customers[cid] = {
            "id": cid, "object": "customer", "address": None, "balance": 0,
            "created": 1_700_000_000 + i, "currency": None, "default_source": None,
            "delinquent": False, "description": None, "discount": None,
            "email": f"customer{i}@example.com", "invoice_prefix": f"S{i:07d}",
            "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                 "footer": None, "rendering_options": None},
            "livemode": False, "metadata": {"order": str(i)}, "name": f"Customer {i}",
            "next_invoice_sequence": 1, "phone": None, "preferred_locales": [],
            "shipping": None, "tax_exempt": "none", "test_clock": None}
    path.write_text(json.dumps({"v": 1, "collections": {"stripe.customers": customers}}))


def _context(ca: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["http/1.1"])
    return context


def light(port: int, ca: str, n: int) -> list[float]:
    """Latency of ``n`` creates one after another from 127.0.0.1, in seconds."""
    sock = tunnel(port, "127.0.0.1", _context(ca))
    reader, took = Reader(sock), []
    for _ in range(n + 20):  # the first 20 warm the connection and the world
        t0 = time.perf_counter()
        sock.sendall(REQUEST)
        status, _ = read_response(reader)
        took.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"a light create answered {status}")
    sock.close()
    return took[20:]


def heavy(port: int, ca: str, stop: multiprocessing.synchronize.Event,
          timings: multiprocessing.queues.Queue[float]) -> None:
    """Searches from 127.0.0.2 back to back until ``stop``."""
    sock = tunnel(port, "127.0.0.2", _context(ca))
    reader = Reader(sock)
    while not stop.is_set():
        t0 = time.perf_counter()
        sock.sendall(SEARCH)
        status, _ = read_response(reader)
        if status != 200:
            raise RuntimeError(f"a search answered {status}")
        timings.put(time.perf_counter() - t0)
    sock.close()


def figures(took: list[float]) -> tuple[float, float, float]:
    ordered = sorted(took)
    return (statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1], ordered[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=25_000)
    ap.add_argument("--requests", type=int, default=400, help="light creates per phase")
    ap.add_argument("--heavy", type=int, default=2, help="connections searching")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        seed(tmp / "seed.json", args.customers)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "guard", "run", "-q", "--no-reload", "--listen-port",
             str(port), "--confdir", str(tmp / "conf"), "--audit", str(tmp / "audit.jsonl"),
             "--world", str(tmp / "seed.json")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        try:
            wait_port(port, timeout=180)
            ca = str(tmp / "conf" / "mitmproxy-ca-cert.pem")
            alone = light(port, ca, args.requests)
            stop = multiprocessing.Event()
            timings: multiprocessing.queues.Queue[float] = multiprocessing.Queue()
            searchers = [multiprocessing.Process(target=heavy, args=(port, ca, stop, timings))
                         for _ in range(args.heavy)]
            for p in searchers:
                p.start()
            first = timings.get(timeout=300)  # the searches are under way
            beside = light(port, ca, args.requests)
            stop.set()
            searches = [first]
            for p in searchers:
                p.join(300)
            while not timings.empty():
                searches.append(timings.get())
            if any(p.exitcode != 0 for p in searchers):
                raise RuntimeError("a searching process failed")
        finally:
            proc.terminate()
            proc.wait(30)
    a, b = figures(alone), figures(beside)
    print(f"light sandbox alone:              p50 {a[0] * 1000:7.2f} ms  p99 {a[1] * 1000:7.2f} "
          f"ms  max {a[2] * 1000:7.2f} ms  ({args.requests} creates)")
    print(f"beside {args.heavy} connections searching: p50 {b[0] * 1000:7.2f} ms  p99 "
          f"{b[1] * 1000:7.2f} ms  max {b[2] * 1000:7.2f} ms")
    print(f"one search over {args.customers} customers: median "
          f"{statistics.median(searches) * 1000:.0f} ms ({len(searches)} searches)")
    print(f"ratio beside/alone: p50 {b[0] / a[0]:.1f}x, p99 {b[1] / a[1]:.1f}x "
          f"(1.0 = the heavy sandbox costs the light one nothing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
