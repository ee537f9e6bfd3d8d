#!/usr/bin/env python3
"""The world store: proxied throughput with Redis vs in-process, two guard processes on one
Redis vs one, fork latency by world size, and memory per fork and per object. Ratios and
counts from one run on this machine (needs redis-server, and curl for ``--client curl``).

    python bench/world.py [--requests 2000] [--rounds 3] [--parallel 8] [--sandboxes 1]
                          [--client lean|curl] [--skip-proxy] [--skip-store]

- proxy: simulated Stripe ``POST /v1/customers`` over HTTPS through ``guard run`` with the
  in-process store, with ``--store redis://...``, and split over two ``guard run --store``
  processes sharing that Redis; rounds alternate so machine noise hits all alike; beside
  requests per second, the CPU each request costs guard (the process, or all of a
  ``--workers`` gateway's), redis-server and the client, steadier than rates on a shared
  machine. The client (bench/loadgen.py) is one process per connection, all released at
  once: ``lean`` (default; Python, HTTP/1.1, about 0.1 ms of CPU per request) or ``curl``
  (HTTP/2, about 0.3-0.4 ms), which shares the cores with guard and redis-server and so
  caps the scale-out ratios. Every configuration gets the same load: ``--parallel``
  connections over ``--sandboxes`` sandboxes (named by client addresses 127.0.0.1 to
  127.0.0.K, guard's default ``--sandbox-from client``; each world made on first use);
- fork: the time to fork a world of 100, 10,000 and 100,000 objects (both backends);
- memory: 100 forks of one 10,000-object world (in-process, tracemalloc), and Redis
  memory per object (``used_memory`` before and after).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import loadgen  # noqa: E402
from loadgen import Load  # noqa: E402

from bench import cpu_seconds, free_port, wait_port  # noqa: E402
from guard.world import MemoryStore, WorldStore  # noqa: E402
from guard.world.redis import RedisStore  # noqa: E402

RUNNING: list[subprocess.Popen[bytes]] = []  # stopped at the end, whatever happens


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT)
    RUNNING.append(proc)
    wait_port(port, timeout=180)  # --workers starts several processes: slow on a busy box
    return proc


def stop_all() -> None:
    for proc in reversed(RUNNING):
        if proc.poll() is None:
            proc.terminate()
    for proc in RUNNING:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def redis_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--dir", str(tmp)], port)
    return proc, f"redis://127.0.0.1:{port}/0"


def guard(tmp: Path, name: str, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "guard", "run", "-q", "--no-reload", "--listen-port",
           str(port), "--confdir", str(tmp / "conf"), "--audit", str(tmp / f"{name}.jsonl"),
           *args]
    return start(cmd, port), port


def tree_cpu(pid: int) -> float:
    """CPU-seconds of a process and its live descendants (``--workers``: the workers)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(tree_cpu(int(c)) for c in children)
    return total


class Cpu:
    """CPU-seconds per request of some guard processes and of redis-server over a load."""

    def __init__(self, pids: list[int], redis_pid: int | None) -> None:
        self.pids, self.redis_pid = pids, redis_pid

    def __enter__(self) -> Cpu:
        self._guard = sum(tree_cpu(p) for p in self.pids)
        self._redis = cpu_seconds(self.redis_pid) if self.redis_pid else 0.0
        return self

    def __exit__(self, *_: object) -> None:
        self.guard = sum(tree_cpu(p) for p in self.pids) - self._guard
        self.redis = (cpu_seconds(self.redis_pid) if self.redis_pid else 0.0) - self._redis

    def per_request(self, got: Load) -> tuple[float, float, float]:
        """(guard, redis-server, client) milliseconds of CPU per answered request."""
        n = max(1, got.done)
        return self.guard / n * 1e3, self.redis / n * 1e3, got.cpu_ms


def proxy(args: argparse.Namespace, tmp: Path, url: str, redis_pid: int) -> None:
    ca = str(tmp / "conf" / "mitmproxy-ca-cert.pem")

    def load(ports: list[int], n: int) -> Load:
        """n requests over --parallel connections and --sandboxes sandboxes, the
        connections spread evenly over ``ports`` (all released at once)."""
        return loadgen.run(args.client, ports, ca, n, args.parallel,
                           sandboxes=args.sandboxes, tmp=tmp)

    procs = {
        "memory": guard(tmp, "memory"),
        "redis": guard(tmp, "redis", "--store", url + "?prefix=b1:"),
        "redis-2": guard(tmp, "redis-2", "--store", url + "?prefix=b2:"),
    }
    second, second_port = guard(tmp, "redis-2b", "--store", url + "?prefix=b2:")
    workers, workers_port = guard(tmp, "workers", "--store", url + "?prefix=b3:",
                                  "--workers", "2")
    rates: dict[str, list[float]] = {"memory": [], "redis": [], "2 processes": [],
                                     "2 workers": []}
    cpus: dict[str, list[tuple[float, float, float]]] = {k: [] for k in rates}
    protocols: set[str] = set()
    try:
        for port in [p for _, p in procs.values()] + [second_port, workers_port]:
            load([port], 200)  # warm up
        n = args.requests
        for r in range(args.rounds):
            for name in ("memory", "redis"):
                proc, port = procs[name]
                with Cpu([proc.pid], redis_pid if name == "redis" else None) as cpu:
                    got = load([port], n)
                _note(rates, cpus, name, r, got, cpu.per_request(got), "")
            with Cpu([procs["redis-2"][0].pid, second.pid], redis_pid) as cpu:
                got = load([procs["redis-2"][1], second_port], n)
            _note(rates, cpus, "2 processes", r, got, cpu.per_request(got), " (one Redis)")
            with Cpu([workers.pid], redis_pid) as cpu:
                got = load([workers_port], n)
            _note(rates, cpus, "2 workers", r, got, cpu.per_request(got), " (one port)")
            protocols.add(got.protocol)  # the same client in every configuration
    finally:
        stop_all()
    mem, red, two, wk = (statistics.median(rates[k])
                         for k in ("memory", "redis", "2 processes", "2 workers"))
    print(f"median: in-process {mem:.1f} req/s, redis {red:.1f} req/s, two processes on "
          f"redis {two:.1f} req/s, --workers 2 {wk:.1f} req/s")
    print(f"ratio redis/in-process {red / mem:.2f}; two processes/one (redis) "
          f"{two / red:.2f}; --workers 2/1 (redis) {wk / red:.2f}  ({args.requests} requests "
          f"x {args.rounds} rounds, {args.parallel} connections, {args.sandboxes} "
          f"sandbox{'es' if args.sandboxes > 1 else ''}, client {args.client} "
          f"({'/'.join(sorted(protocols))}), {_cores()} cores)")
    g, s, c = ({k: statistics.median(x[i] for x in v) for k, v in cpus.items()}
               for i in range(3))
    print(f"CPU per request (median, ms; guard + redis-server + client): in-process "
          f"{g['memory']:.2f} + {c['memory']:.2f}; redis {g['redis']:.2f} + {s['redis']:.2f} "
          f"+ {c['redis']:.2f}; two processes {g['2 processes']:.2f} + "
          f"{s['2 processes']:.2f} + {c['2 processes']:.2f}; --workers 2 "
          f"{g['2 workers']:.2f} + {s['2 workers']:.2f} + {c['2 workers']:.2f}")
    print(f"ratio of guard CPU per request in-process/redis {g['memory'] / g['redis']:.2f} "
          f"(with redis-server's: {g['memory'] / (g['redis'] + s['redis']):.2f})")
    # On a machine whose cores the clients and redis-server share with guard, two guard
    # processes reach at most 2g/(g+o) of one; per core, a split gateway does what one
    # process's guard CPU per request over its own says.
    o = s["redis"] + c["redis"]
    two_eff, wk_eff = g["redis"] / g["2 processes"], g["redis"] / g["2 workers"]
    print(f"ceiling of two processes on these {_cores()} shared cores 2g/(g+o) = "
          f"{2 * g['redis'] / (g['redis'] + o):.2f} (g {g['redis']:.2f} ms, o {o:.2f} ms: "
          f"redis-server + client); per-core efficiency of a split gateway (guard CPU per "
          f"request, one / split): two processes {two_eff:.2f}, --workers 2 {wk_eff:.2f} "
          f"(where each guard process has a core of its own: about {2 * two_eff:.2f}x and "
          f"{2 * wk_eff:.2f}x; derived, not measured)")


def _note(rates: dict[str, list[float]], cpus: dict[str, list[tuple[float, float, float]]],
          name: str, r: int, got: Load, cpu: tuple[float, float, float], extra: str) -> None:
    rates[name].append(got.rate)
    cpus[name].append(cpu)
    label = "--workers 2" if name == "2 workers" else name
    print(f"round {r + 1}  {label:12s} {got.rate:7.1f} req/s  CPU/request guard {cpu[0]:5.2f} "
          f"ms, redis-server {cpu[1]:5.2f} ms, client {cpu[2]:5.2f} ms{extra}"
          + (f"  ({got.failed} failed)" if got.failed else ""), flush=True)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def fill(store: WorldStore, sandbox: str, n: int) -> None:
    doc = {"v": 1, "collections": {"stripe.customers": {
        f"cus_{i:08d}": {"id": f"cus_{i:08d}", "object": "customer", "email":
                         f"c{i}@example.com", "metadata": {"n": str(i)}, "balance": 0}
        for i in range(n)}}}
    sid = f"fill-{sandbox}"
    store.import_snapshot(doc, id=sid)
    store.create(sandbox, snapshot=sid)


def forks(url: str) -> None:
    for label, make in (("in-process", lambda: MemoryStore()),
                        ("redis", lambda: RedisStore(url + f"?prefix=f{time.time_ns()}:"))):
        cells = []
        for n in (100, 10_000, 100_000):
            store = make()
            fill(store, "src", n)
            store.world("src").put("stripe.customers", {"id": "cus_new"})
            times = []
            for i in range(20):
                t0 = time.perf_counter()
                store.fork("src", f"f{i}")
                times.append(time.perf_counter() - t0)
                store.world("src").put("stripe.customers", {"id": f"cus_w{i}"})  # a change
            cells.append(f"{n:>7,} objects {statistics.median(times) * 1e3:7.3f} ms")
            store.close()
        print(f"fork latency, {label:10s}: " + "; ".join(cells), flush=True)


def memory(url: str) -> None:
    store = MemoryStore()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fill(store, "src", 10_000)
    one = tracemalloc.get_traced_memory()[0] - base
    for i in range(100):
        store.fork("src", f"f{i}")
        store.world(f"f{i}").put("stripe.customers", {"id": f"cus_fork{i}", "n": i})
    hundred = tracemalloc.get_traced_memory()[0] - base - one
    tracemalloc.stop()
    print(f"memory, in-process: one 10,000-object world {one / 1e6:.1f} MB; 100 forks of it "
          f"(one change each) {hundred / 1e6:.2f} MB more = {hundred / one:.3f} of one copy "
          f"({hundred / 100 / 1e3:.1f} KB per fork)")
    import redis

    r = redis.Redis.from_url(url)
    before = int(r.info("memory")["used_memory"])
    rs = RedisStore(url + "?prefix=m:")
    fill(rs, "src", 10_000)
    after = int(r.info("memory")["used_memory"])
    for i in range(100):
        rs.fork("src", f"f{i}")
    forked = int(r.info("memory")["used_memory"])
    print(f"memory, redis: {(after - before) / 10_000:.0f} bytes per object (10,000 Stripe "
          f"customers); 100 forks {(forked - after) / 1e3:.0f} KB more")
    rs.close()
    r.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="per configuration per round")
    ap.add_argument("--parallel", type=int, default=8, help="connections, one client "
                    "process each")
    ap.add_argument("--client", choices=loadgen.CLIENTS, default="lean",
                    help="the load generator (bench/loadgen.py): lean (Python, HTTP/1.1, "
                    "about a third of curl's CPU per request) or curl (HTTP/2; the client of "
                    "the figures published before 2026-12-04 04:45 UTC)")
    ap.add_argument("--sandboxes", type=int, default=1, help="spread the connections over "
                    "K sandboxes (client addresses 127.0.0.1 to 127.0.0.K; at most "
                    "--parallel)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-proxy", action="store_true", help="only the store figures")
    ap.add_argument("--skip-store", action="store_true", help="only the proxy figures")
    args = ap.parse_args()
    if not 1 <= args.sandboxes <= min(args.parallel, 254):
        ap.error(f"--sandboxes must be 1 to {min(args.parallel, 254)} (one client address "
                 "per sandbox, at least one connection each)")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        try:
            server, url = redis_server(tmp)
            if not args.skip_store:
                forks(url)
                memory(url)
            if not args.skip_proxy:
                proxy(args, tmp, url, server.pid)
        finally:
            stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
