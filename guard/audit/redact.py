"""Redaction: credentials never reach the audit log. A short fingerprint is kept so
records can still be correlated (same key, same fingerprint), never the secret.

>>> redact_headers([("Authorization", "Bearer sk_test_abc"), ("Accept", "*/*")])
[('Authorization', '[REDACTED:57769519]'), ('Accept', '*/*')]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_SECRET_HEADER = re.compile(
    r"(^|-)(authorization|cookie|set-cookie|api-?key|apikey|token|secret|password|passwd|"
    r"signature|auth|session|credential|private-key)($|-)|^x-amz-security-token$",
    re.IGNORECASE,
)


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:8]


def redacted(secret: str) -> str:
    return f"[REDACTED:{fingerprint(secret)}]"


def is_secret_header(name: str) -> bool:
    return _SECRET_HEADER.search(name) is not None


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, redacted(v) if is_secret_header(k) else v) for k, v in headers]
