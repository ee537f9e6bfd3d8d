"""Sandbox tokens: the secret that proves which sandbox a request belongs to.

Two kinds, both starting ``gsk_`` (so the redactor recognises them anywhere):

- *issued*: ``gsk_`` + 43 random URL-safe characters, made when a sandbox is
  created through the admin API and shown once; guard keeps only its SHA-256;
- *derived*: ``gsk_<sandbox id>.<mac>``, where ``mac`` is the base64url
  HMAC-SHA256 of the id under the guard key (``--sandbox-key FILE``). Whoever
  holds the key (the orchestrator) can mint a token for any id without asking
  guard; ``guard sandbox token ID --key FILE`` prints one.

Verification compares secrets in constant time (:func:`hmac.compare_digest`);
issued tokens are found by the SHA-256 of what the client sent, so a lookup
reveals nothing about stored tokens either.

>>> key = b"k" * 32
>>> t = derive("agent-7", key)
>>> t.startswith("gsk_agent-7."), derived_id(t, key)
(True, 'agent-7')
>>> derived_id(t[:-1], key) is None, derived_id(derive("agent-8", key), b"x" * 32) is None
(True, True)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from guard.errors import SandboxError
from guard.sandbox.model import valid_id

PREFIX = "gsk_"
MAX_LENGTH = 256  # longer credentials are refused before any hashing
_CONTEXT = b"guard-sandbox-token:v1:"
MIN_KEY_BYTES = 16


def issue() -> str:
    """A new random token (256 bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What the registry keeps of an issued token."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _mac(sandbox: str, key: bytes) -> str:
    mac = hmac.new(key, _CONTEXT + sandbox.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def derive(sandbox: str, key: bytes) -> str:
    """The derived token of ``sandbox`` under ``key``."""
    if not valid_id(sandbox):
        raise SandboxError("invalid_request", f"invalid sandbox id {sandbox[:80]!r}")
    return f"{PREFIX}{sandbox}.{_mac(sandbox, key)}"


def derived_id(token: str, key: bytes | None) -> str | None:
    """The sandbox a derived token proves, or None if it is not a valid one under ``key``."""
    if key is None or not token.startswith(PREFIX) or len(token) > MAX_LENGTH:
        return None
    sandbox, dot, mac = token[len(PREFIX):].rpartition(".")
    if not dot or not valid_id(sandbox):
        return None
    expected = _mac(sandbox, key)
    if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "surrogateescape")):
        return None
    return sandbox


def well_formed(token: str) -> bool:
    return token.startswith(PREFIX) and 8 < len(token) <= MAX_LENGTH


def load_key(path: Path) -> bytes:
    """The guard key from a file (raw bytes, at least 16; surrounding whitespace ignored)."""
    try:
        key = path.read_bytes().strip()
    except OSError as e:
        raise SandboxError("invalid_request", f"cannot read the sandbox key {path}: "
                           f"{e.strerror or e}") from e
    if len(key) < MIN_KEY_BYTES:
        raise SandboxError("invalid_request", f"the sandbox key {path} is shorter than "
                           f"{MIN_KEY_BYTES} bytes")
    return key
