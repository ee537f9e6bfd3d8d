"""TLS for the SMTP sink: leaf certificates issued by guard's own CA.

The CA is the one the proxy uses (``<confdir>/mitmproxy-ca.pem``, key and certificate in
one PEM file, written by mitmproxy when guard starts), so a sandbox that trusts guard for
HTTPS also trusts its SMTP sink. Each name a client asks for by SNI (``smtp.sendgrid.net``
when a transparent redirect sends it here) gets its own certificate, made once; clients
that connect by address get one valid for the listen addresses and ``localhost``.

This module reads the CA with ``cryptography`` directly, so the SMTP package never
imports mitmproxy.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

CA_FILE = "mitmproxy-ca.pem"
LEAF_DAYS = 365


class CertIssuer:
    """Server-side TLS contexts signed by the CA in ``confdir``.

    Raises ``FileNotFoundError`` or ``ValueError`` when the CA cannot be read.
    """

    def __init__(self, confdir: Path, names: list[str]) -> None:
        pem = (confdir / CA_FILE).read_bytes()
        self._ca_cert = x509.load_pem_x509_certificate(pem)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, (rsa.RSAPrivateKey,)):
            raise ValueError(f"{confdir / CA_FILE}: unsupported CA key type")
        self._ca_key: CertificateIssuerPrivateKeyTypes = key
        # One leaf key for every certificate: making RSA keys is the slow part.
        self._leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self.default = self._context(sorted(set(names) | {"localhost", "127.0.0.1"}))
        self.default.sni_callback = self._pick

    def _pick(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None,
              _ctx: ssl.SSLContext) -> None:
        if name:
            sock.context = self.for_name(name)

    def server_name(self, ssl_object: object) -> str | None:
        """The SNI name a finished handshake asked for (Python shows it to servers only in
        the SNI callback, which switched the connection to that name's context)."""
        context = getattr(ssl_object, "context", None)
        return next((n for n, c in self._contexts.items() if c is context), None)

    def for_name(self, name: str) -> ssl.SSLContext:
        name = name.lower().rstrip(".")
        context = self._contexts.get(name)
        if context is None:
            context = self._contexts[name] = self._context([name])
        return context

    def _context(self, names: list[str]) -> ssl.SSLContext:
        cert = self._issue(names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # load_cert_chain reads files only: write the pair to a private temporary file.
        fd, path = tempfile.mkstemp(prefix="guard-smtp-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self._leaf_key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
                f.write(cert.public_bytes(serialization.Encoding.PEM))
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        return context

    def _issue(self, names: list[str]) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "guard")])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._ca_cert.subject)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2))
            .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
