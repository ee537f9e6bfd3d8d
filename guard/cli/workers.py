"""``guard run --workers N``: N guard processes on one listening port, sharing worlds.

Each worker is a whole ``guard run`` (same options) in its own process, so every core
serves traffic. They serve one port: the supervisor binds it and every worker accepts from
its one queue, the worker with fewer connections open first (:mod:`guard.proxy.listeners`),
and they share sandbox worlds through the Redis world store: with the in-process store
each worker would have worlds of its own, so guard refuses that.

The supervisor (this module) makes the CA before the workers start (so they all use one),
forwards SIGTERM and SIGINT (each worker shuts down as ``guard run`` does on SIGTERM) and
SIGHUP (each reloads its rules; a changed rule file reloads every worker by itself, since
each watches the files), and starts a worker again when one dies. The SMTP sink listens
in every worker on one port (shared like the proxy's); the DNS stub and the admin
listener (API, console, /metrics, probes) run in worker 0 only, and speak for the whole
gateway:

- the control plane manages every worker's sandboxes (the registry is in Redis);
- ``/metrics`` sums every worker's counters and histograms: with ``--admin-listen`` the
  supervisor makes a directory (a new one each start, removed when it stops) where each
  worker writes its counts as it makes them (:mod:`guard.sharedmetrics`); a dead worker's
  counts stay in the totals and its per-worker gauges go;
- the console's flow list shows every worker's flows: each worker marks the events it
  puts in the sandboxes' live feeds (Redis) with this run's id (``GUARD_GATEWAY``) and its
  index, and worker 0 reads the other workers' (:mod:`guard.console.remote`).

- ``/readyz`` is worker 0's checks and one more, ``workers``: every other live worker can
  write its audit log and has rules (their gauges say so); ``/healthz`` is worker 0's.

Each worker writes its
own audit log, named by host and worker (``audit.jsonl`` -> ``audit.HOST-0.jsonl``,
``audit.HOST-1.jsonl``), so every chain has one writer; ``guard audit`` reads them together.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from guard.gateway import GATEWAY_ENV, METRICS_ENV, WORKER_ENV

if TYPE_CHECKING:
    from guard.options import Options

RESTART_WINDOW = 10.0  # a worker that dies this soon after starting, three times: give up


def count(value: str) -> int:
    """``--workers`` value: a number >= 1, or ``auto`` (the cores this process may use)."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("--workers must be at least 1")
    return n


def audit_path(path: Path, index: int) -> Path:
    """One audit file per writer: ``audit.jsonl`` -> ``audit.HOST-INDEX.jsonl``."""
    host = socket.gethostname().split(".")[0] or "host"
    return path.with_name(f"{path.stem}.{host}-{index}{path.suffix}")


def refusal(n: int, cfg: Options) -> str | None:
    store = cfg.store or ""
    if not store.startswith(("redis://", "rediss://", "unix://")):
        return (f"--workers {n} needs a shared world store: with the in-process "
                "store every worker would keep worlds of its own. Start Redis and add "
                "--store redis://HOST:PORT/DB (or run one worker)")
    if cfg.state is not None:
        return "--workers and --state do not combine (--state journals the in-process store)"
    return None


def child_argv(argv: Sequence[str], port: int) -> list[str]:
    """The worker's ``guard run`` arguments: the supervisor's, without ``--workers``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return [*out, "--listen-port", str(port)]


def supervise(args: argparse.Namespace, cfg: Options) -> int:
    problem = refusal(args.workers, cfg)
    if problem is not None:
        print(f"guard: not starting: {problem}", file=sys.stderr)
        return 2
    from guard.proxy.certs import ensure_ca

    ensure_ca(Path(cfg.confdir).expanduser())  # before the workers: they all use one CA
    port = cfg.listen_port or _free_port(cfg.listen_host)
    argv = [sys.executable, "-m", "guard", "run", *child_argv(args.argv, port)]
    # Two of guard's listeners on one port: refused here in guard's words (binding would fail
    # too); port 0 for the SMTP sink: one port for all workers, picked apart from the others.
    taken = {port: "--listen-port"}
    if cfg.admin_listen is not None:
        taken.setdefault(cfg.admin_listen[1], "--admin-listen")
    for flag, value in (("--smtp-port", cfg.smtp_port), ("--smtps-port", cfg.smtps_port)):
        if value is not None and value in taken:
            print(f"guard: not starting: {flag} {value} is also {taken[value]}'s port: "
                  "give each its own", file=sys.stderr)
            return 2
        if value == 0:  # port 0 for the SMTP sink means one port for all workers
            chosen = _free_port(cfg.listen_host, avoid=taken)
            taken[chosen] = flag
            argv += [flag, str(chosen)]
        elif value is not None:
            taken[value] = flag
    from guard import sharedmetrics

    metrics = None
    if cfg.admin_listen is not None:  # worker 0's /metrics counts every worker's flows
        try:  # in $TMPDIR (or /tmp): private to this run
            metrics = Path(tempfile.mkdtemp(prefix="guard-metrics-"))
            sharedmetrics.prepare(metrics)
        except OSError as e:
            print(f"guard: not starting: cannot make the workers' metrics directory in "
                  f"{tempfile.gettempdir()} (set TMPDIR to a writable one): {e}",
                  file=sys.stderr)
            return 1
    try:
        shared = _listen(cfg, port, [p for p, flag in taken.items() if flag.startswith("--smtp")])
    except OSError as e:
        print(f"guard: not starting: {e.strerror}", file=sys.stderr)
        if metrics is not None:
            shutil.rmtree(metrics, ignore_errors=True)
        return 1
    try:
        return _run(args, cfg, argv, port, metrics, shared)
    finally:
        for socks in shared.values():
            for sock in socks:
                sock.close()
        if metrics is not None:
            shutil.rmtree(metrics, ignore_errors=True)


def _listen(cfg: Options, port: int, smtp_ports: list[int]) -> dict[
        tuple[str, int], list[socket.socket]]:
    """Every TCP listener the workers serve, bound here once (:mod:`guard.proxy.listeners`):
    each mode of the proxy at its address, and the SMTP sink's ports."""
    from guard.proxy import listeners

    addresses = listeners.proxy_addresses(cfg.mode, cfg.listen_host, port)
    addresses += [(cfg.listen_host, p) for p in smtp_ports]
    shared: dict[tuple[str, int], list[socket.socket]] = {}
    try:
        for address in addresses:
            if address in shared:
                raise OSError(98, f"cannot listen on {address[0] or '*'}:{address[1]} "
                                  "twice (two modes on one address?)")
            shared[address] = listeners.bind(address)
    except OSError:
        for socks in shared.values():
            for sock in socks:
                sock.close()
        raise
    return shared


def _run(args: argparse.Namespace, cfg: Options, argv: list[str], port: int,
         metrics: Path | None, shared: dict[tuple[str, int], list[socket.socket]]) -> int:
    from guard.proxy import listeners

    workers: dict[int, subprocess.Popen[bytes]] = {}
    started: dict[int, list[float]] = {}
    stopping = False
    base = {k: v for k, v in os.environ.items() if k not in (METRICS_ENV, GATEWAY_ENV)}
    base[GATEWAY_ENV] = secrets.token_hex(8)  # this run: its workers' feed events say so
    if metrics is not None:
        base[METRICS_ENV] = str(metrics)
    fds = {address: [sock.fileno() for sock in socks] for address, socks in shared.items()}
    load = listeners.Load.make(args.workers)  # open connections per worker: who takes the next
    base[listeners.LISTEN_ENV] = listeners.encode(fds, load)
    inherit = [load.fd, *(fd for each in fds.values() for fd in each)]

    def spawn(i: int) -> None:
        load.slots[i] = listeners.Load.DEAD  # until it serves (a dead one's connections died)
        workers[i] = subprocess.Popen(argv, env={**base, WORKER_ENV: str(i)},
                                      pass_fds=inherit, preexec_fn=_with_parent(os.getpid()))
        started.setdefault(i, []).append(time.monotonic())

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
            for socks in shared.values():  # the port stops listening once the workers
                for sock in socks:         # have let go of it too (as each drains)
                    sock.close()
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM if signum == signal.SIGINT else signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for i in range(args.workers):
        spawn(i)
    print(f"guard: {args.workers} workers on {cfg.listen_host}:{port} (one accept queue), "
          f"worlds in {cfg.store}", flush=True)
    code = 0
    while workers:
        time.sleep(0.2)
        for i, proc in list(workers.items()):
            status = proc.poll()
            if status is None:
                continue
            del workers[i]
            served = load.slots[i] != listeners.Load.DEAD  # it took its place in the queue
            load.slots[i] = listeners.Load.DEAD  # never the lighter one: take its turns
            if metrics is not None:  # its gauges go; its counts stay in the totals
                from guard import sharedmetrics

                sharedmetrics.forget(metrics, i)
            if stopping:
                continue
            if not served and len(started[i]) == 1:  # its own words are above: the options,
                print(f"guard: worker {i} did not start (status {status}); stopping",
                      file=sys.stderr, flush=True)  # not a crash, and the same next time
                code = status if status > 0 else 1
                forward(signal.SIGTERM, None)
                continue
            recent = [t for t in started[i] if time.monotonic() - t < RESTART_WINDOW * 3]
            if len(recent) >= 3 and all(b - a < RESTART_WINDOW for a, b in
                                        zip(recent, recent[1:], strict=False)):
                print(f"guard: worker {i} keeps exiting (status {status}); stopping",
                      file=sys.stderr, flush=True)
                code = 1
                forward(signal.SIGTERM, None)
                continue
            print(f"guard: worker {i} exited (status {status}); starting it again",
                  file=sys.stderr, flush=True)
            spawn(i)
    return code


def _with_parent(supervisor: int) -> Callable[[], None]:
    """What a worker runs before ``exec``: it gets SIGTERM (and drains) when the supervisor
    dies, even of SIGKILL, rather than serving on as an orphan nobody restarts or stops."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != supervisor:  # it died before the line above
            os._exit(1)
    return arm


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _free_port(host: str, avoid: Collection[int] = ()) -> int:
    """A port free now on ``host`` and not in ``avoid`` (ports chosen for other listeners
    that are not bound yet, so the kernel may hand them out again)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port
    raise OSError(f"no free port on {host} apart from {sorted(avoid)}")
