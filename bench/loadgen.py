#!/usr/bin/env python3
"""The benches' load generators: simulated Stripe creates over keep-alive HTTPS tunnels.

Both send ``POST /v1/customers`` (``Authorization: Bearer sk_test_bench``, form body
``email=jenny@example.com``) through guard as an HTTPS proxy, one OS process per
connection, each its share of the requests back to back over its own tunnel:

- ``lean`` (this file's ``--child``): a socket, ``CONNECT api.stripe.com:443``, Python's
  ``ssl`` verifying guard's CA, then HTTP/1.1 keep-alive with the request encoded once and
  each response parsed strictly (status line, headers, Content-Length or chunked body;
  anything else fails the run). The processes start, load the CA, say ready and wait on
  one pipe; closing it releases them together, so the window (release to the last answer)
  holds no interpreter start-up. Its CPU in the window is what competes with guard.
- ``curl``: one ``curl -K config`` per connection (HTTP/2 through each tunnel, curl's
  default): about 0.37 ms of CPU per request, a third of what guard spends, which on a
  2-core machine weighs on the scale-out ratios.

Connection ``i`` goes to the ``i * len(ports) // parallel``-th port and comes from
``127.0.0.(1 + i % sandboxes)``: guard names a sandbox by the client address by default
(``--sandbox-from client``), and a sandbox so named gets its world on first use.

    python bench/loadgen.py --port P --ca CONFDIR/mitmproxy-ca-cert.pem
                            [--requests 400] [--parallel 8] [--sandboxes 1] [--client lean]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "api.stripe.com"
BODY = b"email=jenny@example.com"
REQUEST = (b"POST /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n"
           b"User-Agent: guard-bench-loadgen\r\nAccept: */*\r\n"
           b"Authorization: Bearer sk_test_bench\r\n"
           b"Content-Type: application/x-www-form-urlencoded\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
CLIENTS = ("lean", "curl")
MAX_HEAD = 65536


class ProtocolError(Exception):
    """An answer the lean client does not accept: the run fails."""


@dataclass(frozen=True)
class Load:
    """What one load over all its connections gave."""

    client: str
    protocol: str  # the HTTP version in the tunnels
    done: int  # requests answered
    failed: int  # answered with another status than 200, or not answered
    seconds: float  # the common window: release (or start) to the last answer
    p50_ms: float  # median time per request
    cpu_s: float  # the client's CPU (user + system) in the window, all its processes

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """The client's CPU per answered request, in milliseconds."""
        return self.cpu_s / self.done * 1e3 if self.done else 0.0


def shares(n: int, parallel: int) -> list[int]:
    return [n // parallel + (1 if i < n % parallel else 0) for i in range(parallel)]


def source(i: int, sandboxes: int) -> str:
    return f"127.0.0.{1 + i % sandboxes}"


def run(client: str, ports: Sequence[int], ca: str, n: int, parallel: int, *,
        sandboxes: int = 1, tmp: Path | None = None) -> Load:
    """``n`` requests over ``parallel`` connections spread over ``ports`` and ``sandboxes``."""
    if not 1 <= sandboxes <= min(parallel, 254):
        raise ValueError(f"--sandboxes must be 1 to {min(parallel, 254)} (one address per "
                         f"sandbox, at least one connection each), not {sandboxes}")
    if len(ports) > parallel:
        raise ValueError("fewer connections than proxies")
    plan = [(ports[i * len(ports) // parallel], source(i, sandboxes), share)
            for i, share in enumerate(shares(n, parallel)) if share]
    if client == "lean":
        return _lean(plan, ca)
    if client == "curl":
        if tmp is None:
            raise ValueError("the curl client needs a directory for its configs")
        return _curl(plan, ca, tmp)
    raise ValueError(f"unknown client {client!r} (expected one of {', '.join(CLIENTS)})")


def _reap(proc: subprocess.Popen[str]) -> tuple[str, float]:
    """A child's output and its whole CPU (user + system), from its own rusage."""
    assert proc.stdout is not None
    out = proc.stdout.read()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # Popen reaped it already (kill() polls first): no rusage
        proc.wait()
        return out, 0.0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return out, usage.ru_utime + usage.ru_stime


def _lean(plan: list[tuple[int, str, int]], ca: str) -> Load:
    go_r, go_w = os.pipe()
    try:
        children = [subprocess.Popen(
            [sys.executable, "-I", "-S", __file__, "--child", "--go-fd", str(go_r),
             "--port", str(port), "--ca", ca, "--source", src, "--requests", str(share)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, pass_fds=(go_r,))
            for port, src, share in plan]
        os.close(go_r)
        for child in children:  # each loads the CA and says so, then waits on the pipe
            assert child.stdout is not None
            if child.stdout.readline() != "ready\n":
                for c in children:  # none may start the load
                    c.kill()
                for c in children:
                    _reap(c)
                raise RuntimeError("a lean load-generator process did not start")
        released = time.monotonic()
    finally:
        os.close(go_w)  # EOF on every child's end of the pipe: all start at once
    outs = [_reap(child)[0] for child in children]  # every child, even after a failure
    for child, out in zip(children, outs, strict=True):
        if child.returncode != 0 or not out:
            raise RuntimeError(f"a lean load-generator process failed: {out.strip()}")
    results = [json.loads(out) for out in outs]
    latencies = [t for r in results for t in r["latencies"]] or [0.0]
    return Load("lean", "/".join(sorted({r["protocol"] for r in results})),
                sum(len(r["latencies"]) for r in results),
                sum(r["failed"] for r in results),
                max(r["end"] for r in results) - released,
                statistics.median(latencies) * 1e3, sum(r["cpu"] for r in results))


def _curl(plan: list[tuple[int, str, int]], ca: str, tmp: Path) -> Load:
    for _, _, share in plan:
        config = tmp / f"curl-{share}.cfg"
        if not config.exists():
            # No cache-busting query: Stripe (and guard) refuse unknown parameters with 400.
            config.write_text('url = "https://api.stripe.com/v1/customers"\n'
                              'output = "/dev/null"\n' * share)
    cmd = ["curl", "--no-progress-meter", "--cacert", ca,
           "-H", "Authorization: Bearer sk_test_bench", "-d", BODY.decode(),
           "-w", "%{http_code} %{time_total} %{http_version}\n"]
    start = time.monotonic()
    clients = [subprocess.Popen([*cmd, "--proxy", f"http://127.0.0.1:{port}",
                                 *(["--interface", src] if src != "127.0.0.1" else []),
                                 "-K", str(tmp / f"curl-{share}.cfg")],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
               for port, src, share in plan]
    reaped = [_reap(c) for c in clients]
    elapsed = time.monotonic() - start
    lines = [line.split() for out, _ in reaped for line in out.splitlines() if line.strip()]
    n = sum(share for _, _, share in plan)
    versions = sorted({"h2" if v == "2" else f"HTTP/{v}" for *_, v in lines})
    return Load("curl", "/".join(versions) or "-", len(lines),
                sum(1 for code, *_ in lines if code != "200") + (n - len(lines)), elapsed,
                statistics.median([float(t) * 1e3 for _, t, _ in lines] or [0.0]),
                sum(cpu for _, cpu in reaped))


# --- one lean connection (runs in its own process) ---


class Reader:
    """Buffered reads of HTTP/1.1 answers from a TLS socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ProtocolError("the proxy closed the connection in the middle of an answer")
        self.buf += data

    def until(self, mark: bytes, limit: int = MAX_HEAD) -> bytes:
        while (end := self.buf.find(mark)) < 0:
            if len(self.buf) > limit:
                raise ProtocolError(f"no {mark!r} within {limit} bytes")
            self._fill()
        got = bytes(self.buf[:end])
        del self.buf[:end + len(mark)]
        return got

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        got = bytes(self.buf[:n])
        del self.buf[:n]
        return got


def read_response(reader: Reader) -> tuple[int, bool]:
    """(status, keep-alive) of one HTTP/1.1 answer, its body read and dropped."""
    status_line, *lines = reader.until(b"\r\n\r\n").split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    code = rest[:3]
    if version != b"HTTP/1.1" or len(code) != 3 or not code.isdigit() or code[:1] == b"1":
        raise ProtocolError(f"not an HTTP/1.1 final answer: {status_line[:80]!r}")
    headers: dict[bytes, list[bytes]] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        headers.setdefault(name.lower(), []).append(value.strip())
    encoding, length = headers.get(b"transfer-encoding"), headers.get(b"content-length")
    if encoding and length:
        raise ProtocolError("both Transfer-Encoding and Content-Length")
    if encoding:
        if [e.lower() for e in encoding] != [b"chunked"]:
            raise ProtocolError(f"unsupported Transfer-Encoding {encoding!r}")
        while size := _chunk_size(reader.until(b"\r\n")):
            reader.take(size)
            if reader.take(2) != b"\r\n":
                raise ProtocolError("a chunk does not end with CRLF")
        while reader.until(b"\r\n"):  # trailers, up to the empty line
            pass
    elif length:
        if len(set(length)) != 1 or not length[0].isdigit():
            raise ProtocolError(f"bad Content-Length {length!r}")
        reader.take(int(length[0]))
    else:
        raise ProtocolError("an answer without Content-Length or chunked encoding")
    close = b"close" in b",".join(headers.get(b"connection", [])).lower()
    return int(code), not close


def _chunk_size(line: bytes) -> int:
    digits = line.partition(b";")[0].strip()
    if not digits or digits.strip(b"0123456789abcdefABCDEF"):
        raise ProtocolError(f"bad chunk size line {line[:80]!r}")
    return int(digits, 16)


def tunnel(port: int, src: str, context: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((src, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"CONNECT api.stripe.com:443 HTTP/1.1\r\nHost: api.stripe.com:443\r\n\r\n")
    reader = Reader(sock)
    status = reader.until(b"\r\n\r\n").partition(b"\r\n")[0]
    if not status.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) or reader.buf:
        raise ProtocolError(f"CONNECT refused: {status[:80]!r}")
    return context.wrap_socket(sock, server_hostname=HOST)


def _warm(context: ssl.SSLContext) -> None:
    """Write one ClientHello to memory: OpenSSL's first handshake in a process costs 1 to
    2 ms more than the next (lazy initialisation), which belongs before the window."""
    hello = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=HOST)
    try:
        hello.do_handshake()
    except ssl.SSLWantReadError:
        return
    raise RuntimeError("a TLS handshake completed without a server")


def child(args: argparse.Namespace) -> int:
    context = ssl.create_default_context(cafile=args.ca)
    context.set_alpn_protocols(["http/1.1"])
    _warm(context)
    print("ready", flush=True)
    os.read(args.go_fd, 1)  # blocks until the parent closes the pipe
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    latencies: list[float] = []
    failed = 0
    try:
        tls = tunnel(args.port, args.source, context)
        protocol = tls.selected_alpn_protocol() or "http/1.1 (no ALPN)"
        reader = Reader(tls)
        for i in range(args.requests):
            t0 = time.perf_counter()
            tls.sendall(REQUEST)
            status, keep_alive = read_response(reader)
            latencies.append(time.perf_counter() - t0)
            failed += status != 200
            if not keep_alive and i + 1 < args.requests:
                raise ProtocolError(f"the proxy closed the connection after {i + 1} requests")
        tls.close()
    except (OSError, ProtocolError, ValueError) as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1
    end = time.monotonic()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    print(json.dumps({"latencies": latencies, "failed": failed, "end": end, "cpu": cpu,
                      "protocol": "HTTP/1.1" if protocol == "http/1.1" else protocol}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, action="append", required=True,
                    help="the proxy's port on 127.0.0.1 (repeatable: connections spread)")
    ap.add_argument("--ca", required=True, help="guard's CA (CONFDIR/mitmproxy-ca-cert.pem)")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--parallel", type=int, default=8, help="connections (one process each)")
    ap.add_argument("--sandboxes", type=int, default=1)
    ap.add_argument("--client", choices=CLIENTS, default="lean")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--go-fd", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--source", default="127.0.0.1", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.port = args.port[0]
        return child(args)
    with tempfile.TemporaryDirectory() as name:
        try:
            got = run(args.client, args.port, args.ca, args.requests, args.parallel,
                      sandboxes=args.sandboxes, tmp=Path(name))
        except ValueError as e:
            ap.error(str(e))
    print(f"{got.client} ({got.protocol}): {got.done} requests in {got.seconds:.3f} s, "
          f"{got.rate:.1f} req/s, p50 {got.p50_ms:.2f} ms, {got.failed} failed; client CPU "
          f"{got.cpu_ms:.3f} ms per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
