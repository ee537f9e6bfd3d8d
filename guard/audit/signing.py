"""Keys for signed checkpoints: HMAC-SHA256 (a shared secret) or Ed25519 (a key pair).

A key file is either an Ed25519 key in PEM (guard signs with the private key;
verifiers need only the public key, so they cannot forge checkpoints), or any
other file of at least 16 bytes, whose content (surrounding whitespace removed)
is the HMAC secret. ``guard audit keygen`` writes either kind.

Ed25519 comes from ``cryptography``, which mitmproxy already depends on; it is
imported only when an Ed25519 key is used.

>>> k = HmacKey(b"0123456789abcdef0123456789abcdef")
>>> k.verify(b"data", k.sign(b"data")), k.verify(b"data", "00" * 32)
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

from guard.errors import AuditError

MIN_HMAC_BYTES = 16


class Key(Protocol):
    alg: str
    key_id: str
    secret: bytes  # what fingerprint keys are derived from (empty for a public key)

    def sign(self, data: bytes) -> str: ...

    def verify(self, data: bytes, signature: str) -> bool: ...


class HmacKey:
    alg = "hmac-sha256"

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.key_id = hashlib.sha256(b"guard/key-id/" + secret).hexdigest()[:16]

    def sign(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def verify(self, data: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(data), signature)


class Ed25519Key:
    alg = "ed25519"

    def __init__(self, private: Any = None, public: Any = None) -> None:
        from cryptography.hazmat.primitives import serialization as s

        self._private = private
        self._public = public if public is not None else private.public_key()
        raw_public = self._public.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw_public).hexdigest()[:16]
        self.secret = private.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw,
                                            s.NoEncryption()) if private is not None else b""

    def sign(self, data: bytes) -> str:
        if self._private is None:
            raise AuditError("an Ed25519 public key can verify checkpoints but not sign them")
        return str(self._private.sign(data).hex())

    def verify(self, data: bytes, signature: str) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self._public.verify(bytes.fromhex(signature), data)
        except (InvalidSignature, ValueError):
            return False
        return True


def load_key(path: Path) -> Key:
    """Read a key file; raises :class:`AuditError` saying what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AuditError(f"cannot read audit key {path}: {e.strerror or e}") from e
    if b"-----BEGIN" in raw:
        return _load_pem(path, raw)
    secret = raw.strip()
    if len(secret) < MIN_HMAC_BYTES:
        raise AuditError(f"audit key {path} is too short: an HMAC key needs at least "
                         f"{MIN_HMAC_BYTES} bytes (make one with 'guard audit keygen')")
    return HmacKey(secret)


def _load_pem(path: Path, raw: bytes) -> Key:
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        if b"PRIVATE KEY" in raw:
            private = s.load_pem_private_key(raw, password=None)
            if isinstance(private, ed25519.Ed25519PrivateKey):
                return Ed25519Key(private=private)
        else:
            public = s.load_pem_public_key(raw)
            if isinstance(public, ed25519.Ed25519PublicKey):
                return Ed25519Key(public=public)
    except (ValueError, TypeError) as e:
        raise AuditError(f"audit key {path} is not a readable PEM key: {e}") from e
    raise AuditError(f"audit key {path}: only Ed25519 PEM keys (or HMAC secrets) are supported")


def keygen(path: Path, *, ed25519: bool = False) -> list[Path]:
    """Write a new key (mode 0600); for Ed25519 also ``PATH.pub``. Returns the files."""
    if ed25519:
        from cryptography.hazmat.primitives import serialization as s
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        _write_private(path, private.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8,
                                                   s.NoEncryption()))
        pub = path.with_name(path.name + ".pub")
        pub.write_bytes(private.public_key().public_bytes(
            s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))
        return [path, pub]
    _write_private(path, secrets.token_hex(32).encode() + b"\n")
    return [path]


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
