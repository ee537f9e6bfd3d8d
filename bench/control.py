#!/usr/bin/env python3
"""The control plane's figures (issue 12): counts and ratios, measured in one run.

- sandboxes created per second, through the admin API of a real guard (HTTP, token,
  registry, world) and, for comparison, by the control plane called directly;
- fork latency of worlds with 100, 10,000 and 100,000 objects, and the ratio of the
  largest to the smallest (a copy would grow 1000x; copy-on-write should stay near 1x);
  the same fork through the admin API;
- memory of 1,000 live sandboxes with one object each (KB per sandbox), and of 100
  forks of one 10,000-object world compared with 100 full copies (ratio).

    python bench/control.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from guard.admin.control import ControlPlane, CreateSandbox, ForkSandbox  # noqa: E402
from guard.engine import Engine  # noqa: E402
from guard.rules.loader import load_rules  # noqa: E402
from guard.sandbox import Registry  # noqa: E402
from guard.sandbox.policies import PolicyEngines  # noqa: E402
from guard.world import open_store  # noqa: E402


def plane() -> ControlPlane:
    engine = Engine(load_rules([]))
    return ControlPlane(Registry(), open_store(seed=1), PolicyEngines(), lambda: engine)


def fill(c: ControlPlane, sandbox: str, n: int) -> None:
    world = c.store.world(sandbox)
    batch = 1000
    for start in range(0, n, batch):
        with world.transaction():
            for i in range(start, min(n, start + batch)):
                world.put("stripe.customers", {"id": f"cus_{i:08d}", "object": "customer",
                                               "email": f"user{i}@example.com",
                                               "metadata": {"n": str(i)}})


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def fork_latency(sizes: list[int], forks: int) -> dict[int, float]:
    out = {}
    for n in sizes:
        c = plane()
        c.create(CreateSandbox(id="base"))
        fill(c, "base", n)
        samples = []
        for i in range(forks):
            t = time.perf_counter()
            c.fork("base", ForkSandbox(id=f"f{i}"))
            samples.append(time.perf_counter() - t)
        out[n] = median_ms(samples)
        print(f"fork of a {n:>7,}-object world: {out[n]:8.3f} ms (median of {forks})",
              flush=True)
    return out


def created_per_second(count: int) -> float:
    c = plane()
    t = time.perf_counter()
    for i in range(count):
        c.create(CreateSandbox(id=f"s{i}"))
    rate = count / (time.perf_counter() - t)
    print(f"sandboxes created per second (control plane, direct): {rate:10,.0f}")
    return rate


def parallel_creates(url: str, token: str, count: int, clients: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    from guard.client import Admin

    def work(n: int) -> None:
        with Admin(url, token) as admin:
            for i in range(count // clients):
                admin.create(f"par{n}-{i}")

    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(work, range(clients)))
    return (count // clients * clients) / (time.perf_counter() - t)


def through_api(count: int, fork_sizes: list[int]) -> tuple[float, dict[int, float]]:
    """``guard run --admin-listen`` in its own process, driven by guard.client over HTTP."""
    import os
    import socket
    import subprocess

    from guard.client import Admin

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    with tempfile.TemporaryDirectory() as tmp:
        token = "bench-admin-token-0123456789"
        (Path(tmp) / "token").write_text(token + "\n")
        port, admin_port = free_port(), free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "guard", "run", "--listen-port", str(port), "--confdir",
             tmp, "--quiet", "--no-reload", "--seed", "1", "--sandbox-from", "proxy-user",
             "--admin-listen", f"127.0.0.1:{admin_port}", "--admin-token-file",
             f"{tmp}/token"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            with Admin(f"http://127.0.0.1:{admin_port}", token) as admin:
                while True:
                    try:
                        admin.create("warm")
                        break
                    except Exception:
                        if time.time() > deadline or proc.poll() is not None:
                            raise
                        time.sleep(0.2)
                t = time.perf_counter()
                for i in range(count):
                    admin.create(f"api{i}")
                rate = count / (time.perf_counter() - t)
                print(f"sandboxes created per second (admin API over HTTP, guard in its own "
                      f"process, one client): {rate:8,.0f}", flush=True)
                rate = parallel_creates(f"http://127.0.0.1:{admin_port}", token, count, 8)
                print(f"sandboxes created per second (admin API, 8 clients at once): "
                      f"{rate:8,.0f}", flush=True)
                forks = {}
                for n in fork_sizes:
                    # a world of n objects, uploaded as a snapshot and started from it
                    doc = {"v": 1, "sandbox": "bench", "counters": {}, "collections": {
                        "stripe.customers": {f"cus_{i:08d}": {"id": f"cus_{i:08d}", "n": i}
                                             for i in range(n)}}}
                    admin.upload(f"world{n}", doc)
                    admin.create(f"big{n}", from_=f"world{n}")
                    samples = []
                    for i in range(20):
                        t = time.perf_counter()
                        admin.fork(f"big{n}", f"big{n}-f{i}")
                        samples.append(time.perf_counter() - t)
                    forks[n] = median_ms(samples)
                    print(f"fork through the admin API, {n:>7,} objects: {forks[n]:8.3f} ms",
                          flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    return rate, forks


def memory(live: int, forks: int, size: int) -> dict[str, float]:
    gc.collect()
    tracemalloc.start()
    c = plane()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(live):
        c.create(CreateSandbox(id=f"m{i}"))
        world = c.store.world(f"m{i}")
        with world.transaction():
            world.put("stripe.customers", {"id": "cus_1", "object": "customer",
                                           "email": "jenny@example.com"})
    per_sandbox = (tracemalloc.get_traced_memory()[0] - base) / live
    print(f"memory per live sandbox with one object ({live:,} sandboxes): "
          f"{per_sandbox / 1024:8.1f} KB")

    c = plane()
    c.create(CreateSandbox(id="big"))
    before = tracemalloc.get_traced_memory()[0]
    fill(c, "big", size)
    one_world = tracemalloc.get_traced_memory()[0] - before
    before = tracemalloc.get_traced_memory()[0]
    for i in range(forks):
        c.fork("big", ForkSandbox(id=f"bf{i}"))
    forked = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    ratio = forked / (one_world * forks)
    print(f"{forks} forks of a {size:,}-object world: {forked / 2**20:8.2f} MiB, against "
          f"{one_world * forks / 2**20:8.1f} MiB for {forks} copies (ratio {ratio:.4f})")
    return {"per_sandbox_kb": per_sandbox / 1024, "forks_mib": forked / 2**20,
            "copies_mib": one_world * forks / 2**20, "ratio": ratio}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    args = p.parse_args()
    sizes = [100, 10_000] if args.quick else [100, 10_000, 100_000]
    results: dict[str, Any] = {}
    results["created_direct"] = created_per_second(200 if args.quick else 2000)
    results["forks"] = fork_latency(sizes, 20 if args.quick else 50)
    ratio = results["forks"][sizes[-1]] / results["forks"][sizes[0]]
    print(f"fork latency ratio, {sizes[-1]:,} vs {sizes[0]:,} objects: {ratio:.2f}x "
          f"(the object count grew {sizes[-1] // sizes[0]:,}x)")
    results["created_api"], results["forks_api"] = through_api(
        100 if args.quick else 500, sizes[:2])
    results["memory"] = memory(200 if args.quick else 1000, 100,
                               2000 if args.quick else 10_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
