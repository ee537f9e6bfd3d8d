"""Redaction: credentials and card numbers never reach the audit log.

A secret is replaced by a marker holding a short *keyed* fingerprint,
``[REDACTED:1f2e3d4c]`` (the first 8 hex digits of HMAC-SHA256 over the secret).
The same secret gives the same fingerprint within a log, so an auditor can tell
"the same key was used 40 times" without ever seeing it. The HMAC key is derived
from ``--audit-key`` when one is given (fingerprints then stay stable across
restarts) and is random per guard process otherwise; either way, someone holding
only the log cannot test guesses of a short secret against its fingerprint.

Where to look (this module) is kept apart from what secrets look like
(:mod:`guard.secret_patterns`).

>>> r = Redactor(b"k" * 32)
>>> r.header("Authorization", "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc")
'Bearer sk_test_[REDACTED:918ec6e4]'
>>> r.text("card 4242 4242 4242 4242 ok")
'card [REDACTED:card:4242:72e6fdce] ok'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote_plus

from guard import secret_patterns as P

FINGERPRINT_CONTEXT = b"guard/audit/fingerprint/v1"


class Redactor:
    """Redacts headers, URLs, bodies and data trees with one fingerprint key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = hmac.new(key, FINGERPRINT_CONTEXT, hashlib.sha256).digest() if key \
            else secrets.token_bytes(32)

    def fingerprint(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode("utf-8", "replace"),
                        hashlib.sha256).hexdigest()[:8]

    def mark(self, secret: str) -> str:
        return f"{P.MARK}:{self.fingerprint(secret)}]"

    def token(self, value: str) -> str:
        """A whole value that is a secret; a known provider prefix is kept."""
        m = P.TOKEN.match(value)
        prefix = _kept(m) if m is not None and m.end() == len(value) else ""
        return prefix + self.mark(value)

    # text

    def text(self, text: str) -> str:
        """Known token shapes, ``name=value`` secrets and card numbers anywhere in ``text``."""
        if len(text) < P.MIN_SECRET_TEXT or P.MAYBE_SECRET.search(text) is None:
            return text
        text = P.TOKEN.sub(self._token_match, text)
        text = P.KEY_VALUE.sub(self._key_value_match, text)
        return P.CARD.sub(self._card_match, text)

    def _token_match(self, m: re.Match[str]) -> str:
        prefix = _kept(m)
        rest = m.group(0)[len(prefix):]
        if prefix.lower().startswith("bearer"):
            return prefix + self.token(rest)
        return prefix + self.mark(m.group(0))

    def _key_value_match(self, m: re.Match[str]) -> str:
        value = m.group("value")
        if P.MARK in value or P.MARK in m.group("name"):
            return m.group(0)
        return m.group("name") + self.mark(value)

    def _card_match(self, m: re.Match[str]) -> str:
        digits = P.card_digits(m.group(0))
        if digits is None:
            return m.group(0)
        return f"{P.MARK}:card:{digits[-4:]}:{self.fingerprint(digits)}]"

    # headers

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[list[str]]:
        return [[k, self.header(k, v)] for k, v in headers]

    def header(self, name: str, value: str) -> str:
        low = name.lower()
        if low in ("authorization", "proxy-authorization"):
            return self._authorization(value)
        if low == "cookie":
            return "; ".join(self._cookie(c) for c in value.split(";"))
        if low == "set-cookie":
            first, sep, attrs = value.partition(";")
            return self._cookie(first) + sep + attrs
        if P.is_secret_header(low):
            return self.token(value.strip())
        return self.text(value)

    def _authorization(self, value: str) -> str:
        scheme, sep, rest = value.strip().partition(" ")
        if not sep:
            return self.token(value.strip())
        rest = rest.strip()
        if scheme.lower() == "basic":
            return f"{scheme} {self._basic(rest)}"
        if scheme.lower().startswith("aws4-"):
            # Credential scope and signed headers help an auditor; the key id and the
            # signature are redacted by the token patterns. Nothing else in it is secret.
            return f"{scheme} {self.text(rest)}"
        return f"{scheme} {self.token(rest)}"

    def _basic(self, token: str) -> str:
        """``user:password`` decoded; the password always redacted, the user when it is a
        key (``curl -u sk_test_...:`` sends the key as the user)."""
        try:
            user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self.token(token)
        if not sep or not password:
            return self.token(user) + sep
        return f"{self.text(user)}:{self.mark(password)}"

    def _cookie(self, pair: str) -> str:
        name, sep, value = pair.partition("=")
        if not sep:
            return pair.strip() and self.mark(pair.strip())
        return f"{name.strip()}={self.mark(value.strip())}"

    # URLs and forms

    def query(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, self.mark(v) if P.is_secret_name(k) and v else self.text(v))
                for k, v in pairs]

    def form(self, text: str) -> str:
        """A url-encoded form, pair by pair; untouched pairs keep their exact bytes."""
        out = []
        for pair in text.split("&"):
            raw_name, sep, raw_value = pair.partition("=")
            name, value = unquote_plus(raw_name), unquote_plus(raw_value)
            if P.is_secret_name(name) and value:
                out.append(f"{raw_name}{sep}{self.mark(value)}")
                continue
            clean = self.text(value)
            out.append(pair if clean == value else
                       f"{raw_name}{sep}{quote(clean, safe='[]:.@,/ ').replace(' ', '+')}")
        return "&".join(out)

    # bodies and data

    def body(self, body: bytes, content_type: str) -> bytes:
        """A request or response body with every secret replaced (binary bodies too:
        they are scanned byte for byte, so a key inside a multipart upload is found)."""
        if not body:
            return body
        try:
            text, binary = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, binary = body.decode("latin-1"), True
        ctype = content_type.split(";")[0].strip().lower()
        if not binary and (ctype.endswith("json") or text.lstrip()[:1] in ("{", "[")):
            try:
                data = json.loads(text)
            except ValueError:
                pass
            else:
                clean = self.data(data)
                return body if clean == data else json.dumps(
                    clean, ensure_ascii=False, separators=(",", ":")).encode()
        if ctype == "application/x-www-form-urlencoded" and not binary:
            text = self.form(text)
        else:
            text = P.MULTIPART_FIELD.sub(self._multipart_match, text)
            text = self.text(text)
        return text.encode("latin-1" if binary else "utf-8")

    def _multipart_match(self, m: re.Match[str]) -> str:
        if not P.is_secret_name(m.group("name")) or not m.group("value"):
            return m.group(0)
        return m.group("head") + self.mark(m.group("value"))

    def data(self, node: Any, secret: bool = False) -> Any:
        """A JSON-like tree: values under secret keys, token shapes and card numbers."""
        if isinstance(node, dict):
            return {k: self.data(v, secret or P.is_secret_name(str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [self.data(v, secret) for v in node]
        if node is None or isinstance(node, bool):
            return node
        if secret:
            return self.mark(str(node))
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, int) and P.card_digits(str(node)):
            return self.text(str(node))
        return node


def _kept(m: re.Match[str]) -> str:
    for name, value in m.groupdict().items():
        if value is not None and name.startswith("keep"):
            return value
    return ""
