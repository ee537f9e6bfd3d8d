"""A network lab made of namespaces: create and remove them, run code inside them, and a
fake internet whose servers count every connection and datagram they get.

Everything is named with a per-run prefix and uses 10.231.0.0/16 addresses that exist
only inside the lab's namespaces; nothing is configured in the host's namespace.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"gt{os.getpid() % 100000}-"
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
# `guard jail` options that show this test run's Python (often under /root, closed to the
# jail's unprivileged user) and checkout to a jailed command
PYTHON_READABLE = [a for p in sorted({sys.base_prefix, sys.prefix, str(ROOT)})
                   for a in ("--readable", p)]


def require_netns() -> None:
    """Skip (or, with GUARD_REQUIRE_NETNS=1 as in CI, fail) when namespaces are unavailable."""
    missing = [tool for tool in ("ip", "iptables") if shutil.which(tool) is None]
    why = ("not root" if os.geteuid() != 0 else
           f"missing {', '.join(missing)}" if missing else None)
    if why is None:
        return
    if os.environ.get("GUARD_REQUIRE_NETNS") == "1":
        pytest.fail(f"network-namespace tests required (GUARD_REQUIRE_NETNS=1) but {why}")
    pytest.skip(f"network-namespace tests need root, ip and iptables: {why}")


def sh(*cmd: str, check: bool = True, ns: str | None = None) -> str:
    argv = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr}")
    return done.stdout


class Netns:
    """One network namespace with an optional /etc/netns/<name>/hosts file."""

    def __init__(self, role: str, *, create: bool = True) -> None:
        self.name = PREFIX + role if create else role
        self.etc = Path("/etc/netns") / self.name
        if create:
            sh("ip", "netns", "add", self.name)
            sh("ip", "-n", self.name, "link", "set", "lo", "up")

    @classmethod
    def existing(cls, name: str) -> Netns | None:
        """The namespace called ``name`` if it exists (to remove a leftover)."""
        if Path(f"/run/netns/{name}").exists() or (Path("/etc/netns") / name).exists():
            return cls(name, create=False)
        return None

    def hosts(self, names: dict[str, str]) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost"] + [f"{ip} {name}" for name, ip in names.items()]
        (self.etc / "hosts").write_text("\n".join(lines) + "\n")

    def resolver(self, address: str) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "resolv.conf").write_text(f"nameserver {address}\noptions timeout:2\n")

    def run(self, *cmd: str, check: bool = True) -> str:
        return sh(*cmd, check=check, ns=self.name)

    def delete(self) -> None:
        for pid in sh("ip", "netns", "pids", self.name, check=False).split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        sh("ip", "netns", "del", self.name, check=False)
        shutil.rmtree(self.etc, ignore_errors=True)


def link(a: Netns, a_if: str, a_addr: str, b: Netns, b_if: str, b_addr: str) -> None:
    """A veth pair between two namespaces, addressed and up."""
    sh("ip", "-n", a.name, "link", "add", a_if, "type", "veth", "peer", "name", b_if,
       "netns", b.name)
    for ns, iface, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
        sh("ip", "-n", ns.name, "addr", "add", addr, "dev", iface)
        sh("ip", "-n", ns.name, "link", "set", iface, "up")


@contextmanager
def inside(ns: Netns) -> Iterator[None]:
    """Run the body in ``ns`` (this thread only): sockets made here live in ``ns``."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    try:
        os.setns(target, os.CLONE_NEWNET)
        yield
    finally:
        os.setns(own, os.CLONE_NEWNET)
        os.close(own)
        os.close(target)


def in_thread(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` in a short-lived thread (so a setns there never touches this thread)."""
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised below
            box["error"] = e

    t = threading.Thread(target=main)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


class LabCA:
    """A CA of the test's own and server certificates it signs (the fake internet's PKI)."""

    def __init__(self, directory: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ser, self._ec = x509, hashes, serialization, ec
        self._oid = NameOID
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "guard test internet CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), True)
                     .sign(self.key, hashes.SHA256()))
        self.path = directory / "internet-ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def server_context(self, names: list[str]) -> ssl.SSLContext:
        x509, ser = self._x509, self._ser
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(self._oid.COMMON_NAME, names[0])]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                               False)
                .sign(self.key, self._hashes.SHA256()))
        cert_path, key_path = self.dir / "server.pem", self.dir / "server.key"
        cert_path.write_bytes(cert.public_bytes(ser.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                               ser.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        return ctx


class FakeInternet:
    """Servers in a namespace that count every TCP connection (by port) and UDP datagram,
    and record every HTTP request (port, Host, path) they answer."""

    def __init__(self, ns: Netns) -> None:
        self.ns = ns
        self.connections: Counter[tuple[str, int]] = Counter()
        self.datagrams: Counter[tuple[str, int]] = Counter()
        self.requests: list[tuple[int, str, str]] = []
        self._closers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def total(self) -> int:
        with self._lock:
            return sum(self.connections.values()) + sum(self.datagrams.values())

    def _count(self, counter: Counter[tuple[str, int]], key: tuple[str, int]) -> None:
        with self._lock:
            counter[key] += 1

    def http(self, address: str, port: int, tls: ssl.SSLContext | None = None,
             files: Path | None = None) -> None:
        """An HTTP(S) server answering every GET with JSON naming what it got, or, with
        ``files``, with the file at that path under ``files`` when there is one (enough for
        git's "dumb" HTTP protocol on ``/repo.git/``)."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                outer._count(outer.connections, (address, port))
                super().setup()

            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").split(":")[0]
                with outer._lock:
                    outer.requests.append((port, host, self.path))
                body = json.dumps({"internet": True, "host": host, "path": self.path}).encode()
                kind = "application/json"
                if files is not None:
                    local = (files / self.path.split("?")[0].lstrip("/")).resolve()
                    if files.resolve() in local.parents and local.is_file():
                        body, kind = local.read_bytes(), "application/octet-stream"
                    elif self.path.startswith("/repo.git/"):
                        self.send_error(404)  # git probes for files that are not there
                        return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        def make() -> ThreadingHTTPServer:
            with inside(self.ns):
                return ThreadingHTTPServer((address, port), Handler)

        server = in_thread(make)
        if tls is not None:  # handshake per connection, in the handler thread
            server.socket = tls.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._closers.append(lambda: (server.shutdown(), server.server_close()))

    def tcp(self, address: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET

        def make() -> socket.socket:
            with inside(self.ns):
                s = socket.create_server((address, port), family=family)
            return s

        sock = in_thread(make)

        def serve() -> None:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                self._count(self.connections, (address, port))
                conn.close()

        threading.Thread(target=serve, daemon=True).start()
        self._closers.append(sock.close)

    def udp(self, address: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET

        def make() -> socket.socket:
            with inside(self.ns):
                s = socket.socket(family, socket.SOCK_DGRAM)
                s.bind((address, port))
            return s

        sock = in_thread(make)

        def serve() -> None:
            while True:
                try:
                    sock.recvfrom(65535)
                except OSError:
                    return
                self._count(self.datagrams, (address, port))

        threading.Thread(target=serve, daemon=True).start()
        self._closers.append(sock.close)

    def unix(self, path: Path) -> None:
        """A Unix stream socket at ``path`` that anyone may connect to, counted as (path, 0)."""
        def make() -> socket.socket:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(str(path))
            path.chmod(0o777)
            s.listen()
            return s

        sock = make()

        def serve() -> None:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                self._count(self.connections, (str(path), 0))
                conn.close()

        threading.Thread(target=serve, daemon=True).start()
        self._closers.append(sock.close)

    def close(self) -> None:
        for close in self._closers:
            try:
                close()
            except OSError:
                pass


def clean_env() -> dict[str, str]:
    """This process's environment without proxy settings, with the checkout importable."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env
