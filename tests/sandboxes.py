"""Sandbox tokens for tests: one guard key for the session, tokens derived from it.

Tests that name sandboxes by header or proxy user run guard with ``sandbox_key=KEY_FILE``
(the ``guard_proxy`` fixture does it for them) and send ``token(name)``.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path

from guard.sandbox import tokens

KEY = b"guard-test-sandbox-key-0123456789"
_fd, _name = tempfile.mkstemp(prefix="guard-test-sandbox-", suffix=".key")
os.write(_fd, KEY)
os.close(_fd)
KEY_FILE = Path(_name)
atexit.register(KEY_FILE.unlink, missing_ok=True)


def token(sandbox: str) -> str:
    """The token that proves ``sandbox`` to a guard started with :data:`KEY_FILE`."""
    return tokens.derive(sandbox, KEY)


def proxy_url(g_url: str, sandbox: str) -> str:
    """``http://SANDBOX:TOKEN@host:port``: the proxy URL form every common client sends."""
    return g_url.replace("http://", f"http://{sandbox}:{token(sandbox)}@", 1)
