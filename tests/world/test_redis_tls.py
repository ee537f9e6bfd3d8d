"""A world store at a ``rediss://`` URL (TLS, as managed Redis services require): a real
redis-server with TLS on a free loopback port, its certificate from a CA made here; guard
serves Stripe through it, its live feed is there, and a certificate it cannot verify
fails requests closed rather than falling back to anything."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from guard.options import Options
from guard.proxy.embedded import RunningGuard
from guard.world.redis import RedisStore
from tests.redis_server import answers

API = "https://api.stripe.com/v1"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certs(d: Path, cn: str) -> tuple[Path, Path, Path]:
    """A CA (ca.pem) and a server certificate for 127.0.0.1 it signed (srv.pem, srv.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    srv = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(_name(cn))
           .public_key(key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(minutes=5))
           .not_valid_after(now + datetime.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName(
               [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
           .sign(ca_key, hashes.SHA256()))
    d.mkdir(parents=True, exist_ok=True)
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "srv.pem").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (d / "srv.key").write_bytes(_pem(key))
    return d / "ca.pem", d / "srv.pem", d / "srv.key"


def _session(g: RunningGuard) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies, s.verify = g.proxies, g.ca
    s.headers["Authorization"] = "Bearer sk_test_tls"
    return s


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """redis-server speaking TLS only: (its port, the CA that signed its certificate)."""
    ca, cert, key = _certs(tmp_path / "pki", "guard test CA")
    port = _port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port",
         str(port), "--bind", "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file",
         str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no", "--save", "",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(ca),
                             socket_timeout=1, retry_on_error=[])
        up = answers(client, proc)
        client.close()
        assert up, "redis-server did not start with TLS"
        yield port, ca
    finally:
        proc.terminate()
        proc.wait(10)


def test_guard_serves_stripe_through_a_tls_redis_and_fails_closed_on_a_certificate_it_cannot_verify(
        tls_redis: tuple[int, Path], confdir: Path, tmp_path: Path) -> None:
    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}&prefix=tls1:"
    cfg = Options(listen_port=0, confdir=confdir, quiet=True, audit=tmp_path / "a.jsonl",
                  store=url)
    with RunningGuard(cfg) as g:
        s = _session(g)
        made = [s.post(f"{API}/customers", data={"email": f"t{i}@example.com"}).json()["id"]
                for i in range(3)]
        listed = s.get(f"{API}/customers", params={"limit": 10}).json()["data"]
        assert [c["id"] for c in listed] == made[::-1]
        feed = s.get("http://guard.internal/events").json()["events"]
        assert sum(e.get("rule") == "stripe.customers.create" for e in feed) == 3
    # the objects are in that Redis, read over TLS by another process's store
    other = RedisStore(url)
    try:
        assert other.world("127.0.0.1").get("stripe.customers", made[0]) is not None
    finally:
        other.close()

    # the same server, but guard trusts another CA: nothing is served from elsewhere
    wrong, _, _ = _certs(tmp_path / "other-pki", "another CA")
    cfg = Options(listen_port=0, confdir=confdir, quiet=True, audit=tmp_path / "b.jsonl",
                  store=f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={wrong}&prefix=tls1:")
    with RunningGuard(cfg) as g:
        r = _session(g).post(f"{API}/customers", data={"email": "x@example.com"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["rule"] == "guard.store-unavailable"
        assert "certificate" in r.json()["error"]["message"].lower()
