#!/usr/bin/env python3
"""The floor under any Python proxy, beside stock mitmdump, per CPU-second, in one run.

Issue 14 item 2 asks for guard at 1.5x mitmdump's simulated requests per CPU-second.
Before building a fast path outside mitmproxy's layer stack, this measures what such a
path could reach at best: a plain asyncio server that answers CONNECT, terminates TLS
with a certificate minted from the same CA (mitmproxy's CertStore), reads HTTP/1.1
requests on the keep-alive tunnel and writes a fixed response. No rules, no audit: the
cost that is left is Python's asyncio, OpenSSL and the sockets. Compare with
bench/bench.py's guard figure to see how much room guard's own work has. The floor
speaks HTTP/1.1 only (it offers no h2 in ALPN), while mitmdump and guard give curl
HTTP/2: a real fast path would pay for h2 as well.

    python bench/floor.py [--requests 1500] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench import FIXED_ADDON, free_port, run_load, start  # noqa: E402

BODY = b'{"id":"cus_fixed","object":"customer"}'
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(BODY), BODY))


def serve(port: int, confdir: Path) -> None:
    """The floor server (run in its own process)."""
    from cryptography.hazmat.primitives import serialization
    from mitmproxy.certs import CertStore

    store = CertStore.from_store(confdir, "mitmproxy", 2048)
    contexts: dict[str, ssl.SSLContext] = {}
    keys = Path(tempfile.mkdtemp())

    def context(host: str) -> ssl.SSLContext:
        if host not in contexts:
            entry = store.get_cert(host, [host])
            cert, key = keys / f"{host}.pem", keys / f"{host}.key"
            cert.write_bytes(entry.cert.to_pem())
            key.write_bytes(entry.privatekey.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()))
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            ctx.set_alpn_protocols(["http/1.1"])
            contexts[host] = ctx
        return contexts[host]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        host = line.split()[1].split(b":")[0].decode()
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(context(host))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for h in head.split(b"\r\n"):
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                writer.write(RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--serve", nargs=2, metavar=("PORT", "CONFDIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return 0
    mitmdump = str(Path(sys.executable).parent / "mitmdump")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        conf = tmp / "conf"
        ca = str(conf / "mitmproxy-ca-cert.pem")
        (tmp / "fixed.py").write_text(FIXED_ADDON)
        p1, p2 = free_port(), free_port()
        procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        procs["mitmdump"] = (start([mitmdump, "-q", "--listen-port", str(p1), "--set",
                                    f"confdir={conf}", "--set", "connection_strategy=lazy",
                                    "-s", str(tmp / "fixed.py")], p1), p1)
        try:
            run_load(p1, ca, 100, 4, tmp)  # mitmdump makes the CA
            procs["floor"] = (start([sys.executable, __file__, "--serve", str(p2), str(conf)],
                                    p2), p2)
            run_load(p2, ca, 100, 4, tmp)
            got: dict[tuple[str, int], list[float]] = {}
            for r in range(args.rounds):
                for conns in (1, 16):
                    for name, (proc, port) in procs.items():
                        res = run_load(port, ca, args.requests, conns, tmp, proc.pid)
                        got.setdefault((name, conns), []).append(res.per_cpu)
                        print(f"round {r + 1}  {conns:>2} conn  {name:9s} {res.rate:8.1f} req/s"
                              f"  {res.per_cpu:8.1f} req/CPU-s"
                              + (f"  ({res.failed} failed)" if res.failed else ""), flush=True)
        finally:
            for proc, _ in procs.values():
                proc.terminate()
                proc.wait(10)
    for conns in (1, 16):
        floor, stock = (statistics.median(got[(n, conns)]) for n in ("floor", "mitmdump"))
        if not floor or not stock:
            print(f"{conns:>2} connections: too few requests to see CPU time (use --requests)")
            continue
        print(f"{conns:>2} connections: floor / mitmdump per CPU-second {floor / stock:.1f} "
              f"({floor:.0f} vs {stock:.0f}); 1.5x mitmdump leaves guard "
              f"{1000 / (1.5 * stock) - 1000 / floor:.2f} ms of CPU per request for its own work")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
