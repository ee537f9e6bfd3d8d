"""guard's CA, made by mitmproxy's own certificate store (so the proxy signs with it)."""

from __future__ import annotations

from pathlib import Path

from mitmproxy import certs

CA_FILE = "mitmproxy-ca-cert.pem"


def ensure_ca(confdir: Path) -> Path:
    """guard's CA certificate in ``confdir``, created (as guard run would) if missing."""
    confdir.mkdir(parents=True, exist_ok=True)
    certs.CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir / CA_FILE
