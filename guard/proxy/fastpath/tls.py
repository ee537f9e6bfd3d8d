"""TLS for the fast path: Python's own ``ssl`` (OpenSSL, in C) with certificates minted by
mitmproxy's certificate store, the same CA and the same names mitmproxy's TLS layer would
put in them (the SNI, or the proxy's address without one, and the CONNECT host).

One server context per CONNECT host; its SNI callback switches the handshake to a
context holding the certificate for the name the client asked for. Both kinds are
cached (bounded), so a keep-alive load mints each certificate once.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from collections import OrderedDict
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy.certs import CertStore

CACHE_SIZE = 1024


def _name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value.encode("idna").decode())


class Contexts:
    """``server(connect_host, sockname)``: the SSLContext to accept a tunnel's TLS with.
    ``alpn`` is what the fast path speaks (``h2`` first when it serves HTTP/2)."""

    def __init__(self, store: CertStore, alpn: tuple[str, ...]) -> None:
        self.store = store
        self.alpn = list(alpn)
        self._by_names: OrderedDict[tuple[str, ...], ssl.SSLContext] = OrderedDict()
        self._by_connect: OrderedDict[tuple[str, ...], ssl.SSLContext] = OrderedDict()

    def server(self, connect_host: str, sockname: str) -> ssl.SSLContext:
        key = (connect_host, sockname)
        found = self._by_connect.get(key)
        if found is not None:
            self._by_connect.move_to_end(key)
            return found

        def pick(sslobj: ssl.SSLObject, sni: str | None, _: ssl.SSLContext) -> None:
            if sni:
                sslobj.guard_sni = sni  # type: ignore[attr-defined]  # read once it is done
                try:
                    sslobj.context = self._leaf((sni, connect_host))
                except (ValueError, UnicodeError):  # a name no certificate can carry:
                    pass  # keep this context's (the client's name check then fails)

        # A context of its own per CONNECT host: the SNI callback needs that host.
        found = self._context((sockname, connect_host))
        found.sni_callback = pick
        _bounded_put(self._by_connect, key, found)
        return found

    def _leaf(self, names: tuple[str, ...]) -> ssl.SSLContext:
        names = tuple(dict.fromkeys(n for n in names if n))
        found = self._by_names.get(names)
        if found is not None:
            self._by_names.move_to_end(names)
            return found
        found = self._context(names)
        _bounded_put(self._by_names, names, found)
        return found

    def _context(self, names: tuple[str, ...]) -> ssl.SSLContext:
        names = tuple(dict.fromkeys(n for n in names if n))
        sans = [_name(n) for n in names]
        entry = self.store.get_cert(str(sans[0].value) if sans else None, sans)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(self.alpn)
        chain = entry.cert.to_pem() + b"".join(c.to_pem() for c in entry.chain_certs)
        key = entry.privatekey.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        # ssl loads certificates from files only: a private directory, gone at once.
        with tempfile.TemporaryDirectory(prefix="guard-tls-") as tmp:
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(chain)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
            ctx.load_cert_chain(cert_file, key_file)
        return ctx


def _bounded_put(cache: OrderedDict[tuple[str, ...], ssl.SSLContext],
                 key: tuple[str, ...], value: ssl.SSLContext) -> None:
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
