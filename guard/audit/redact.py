"""Redaction: credentials and card numbers never reach the audit log.

A secret is replaced by a marker holding a short *keyed* fingerprint,
``[REDACTED:1f2e3d4c]`` (the first 8 hex digits of HMAC-SHA256 over the secret).
The same secret gives the same fingerprint within a log, so an auditor can tell
"the same key was used 40 times" without ever seeing it. The HMAC key is derived
from ``--audit-key`` when one is given (fingerprints then stay stable across
restarts) and is random per guard process otherwise; either way, someone holding
only the log cannot test guesses of a short secret against its fingerprint.

Where to look (this module) is kept apart from what secrets look like
(:mod:`guard.secret_patterns`). Redaction costs time linear in what it is given, and
it is given bounded input: a text longer than ``text_limit`` is cut (its tail is
not logged, and not scanned) and bodies are cut by the event builder before they
get here.

>>> r = Redactor(b"k" * 32)
>>> r.header("Authorization", "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc")
'Bearer sk_test_[REDACTED:918ec6e4]'
>>> r.header("Authorization", "Bearer sk_live_123")
'Bearer sk_live_[REDACTED:9bd33f18]'
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
DEFAULT_TEXT_LIMIT = 64 * 1024  # characters of one header, path or value that are kept
MAX_DEPTH = 64  # JSON nesting redacted structurally; deeper bodies are redacted as text
_SHORT_PASSWORD = 4  # Basic auth with a password shorter than this: the user is the key


class Redactor:
    """Redacts headers, URLs, bodies and data trees with one fingerprint key."""

    def __init__(self, key: bytes | None = None, *,
                 text_limit: int = DEFAULT_TEXT_LIMIT) -> None:
        self._key = hmac.new(key, FINGERPRINT_CONTEXT, hashlib.sha256).digest() if key \
            else secrets.token_bytes(32)
        self.text_limit = text_limit
        self._cache: dict[str, str] = {}

    def fingerprint(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()[:8]

    def digest(self, data: bytes) -> str:
        """A keyed digest of a whole body: equal bodies have equal digests within a log, and
        nobody without the key can confirm a guess at what a body held."""
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def mark(self, secret: str) -> str:
        return f"{P.MARK}:{self.fingerprint(secret)}]"

    def token(self, value: str) -> str:
        """A whole value that is a secret; a known provider prefix is kept, however short
        the rest is (``sk_live_1`` becomes ``sk_live_[REDACTED:...]``)."""
        if P.MARKER.fullmatch(value):
            return value
        m = P.PREFIX.match(value)
        prefix = m.group(0) if m is not None and m.end() < len(value) else ""
        return prefix + self.mark(value)

    # text

    def text(self, text: str, *, limit: int | None = None) -> str:
        """Known token shapes, ``name=value`` secrets, card numbers and random-looking keys
        anywhere in ``text``, which is cut at ``limit`` (default ``text_limit``) characters
        first."""
        limit = self.text_limit if limit is None else limit
        if len(text) > limit:
            text = _cut(text, limit)
        if len(text) < P.MIN_SECRET_TEXT:
            return text
        if len(text) > _CACHED_LEN:
            return self._scan(text)
        clean = self._cache.get(text)
        if clean is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            clean = self._cache[text] = self._scan(text)
        return clean

    def _scan(self, text: str) -> str:
        for shape in P.SHAPES:
            for trigger in shape.triggers:
                if trigger in text:
                    text = shape.pattern.sub(self._shape_match, text)
                    break
        if "=" in text or ":" in text:
            low = text.lower()
            if any(word in low for word in P.KEY_VALUE_WORDS):
                text = self._key_values(text, low)
        if len(text) >= 13:
            text = P.CARD.sub(self._card_match, text)
        if len(text) >= P.MIN_RANDOM:
            text = P.AWS_SECRET.sub(self._random_match, text)
            text = P.RANDOM_RUN.sub(self._random_match, text)
        return text

    def _shape_match(self, m: re.Match[str]) -> str:
        prefix = m.group("keep")
        if prefix.lower().startswith("bearer"):
            return prefix + self.token(m.group(0)[len(prefix):])
        return prefix + self.mark(m.group(0))

    def _key_values(self, text: str, low: str) -> str:
        """``name=value`` pairs, found in the lower-cased text (so the keyword search is
        case-sensitive and fast) and replaced in the original."""
        if len(low) != len(text):  # a character whose lower case is longer: rare
            return _KEY_VALUE_ANY_CASE.sub(self._key_value_match, text)
        out, pos = [], 0
        for m in P.KEY_VALUE.finditer(low):
            value = text[m.start("value"):m.end("value")]
            if P.MARKER.fullmatch(value):
                continue
            out.append(text[pos:m.start("value")])
            out.append(self.token(value))
            pos = m.end("value")
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _key_value_match(self, m: re.Match[str]) -> str:
        value = m.group("value")
        if P.MARKER.fullmatch(value):
            return m.group(0)
        return m.group("name") + self.token(value)

    def _card_match(self, m: re.Match[str]) -> str:
        digits = P.card_digits(m.group(0))
        if digits is None:
            return m.group(0)
        return f"{P.MARK}:card:{digits[-4:]}:{self.fingerprint(digits)}]"

    def _random_match(self, m: re.Match[str]) -> str:
        run = m.group(0)
        return self.mark(run) if P.looks_random(run) else run

    # headers

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[list[str]]:
        return [[self._name(k), self.header(k, v)] for k, v in headers]

    def _name(self, name: str) -> str:
        return name if len(name) <= 256 else _cut(name, 256)

    def header(self, name: str, value: str) -> str:
        low = name.lower()
        if len(value) > self.text_limit:
            value = _cut(value, self.text_limit)
        if low in ("authorization", "proxy-authorization"):
            return self._authorization(value)
        if low == "cookie":
            return "; ".join(self._cookie(c) for c in value.split(";"))
        if low == "set-cookie":
            first, sep, attrs = value.partition(";")
            return self._cookie(first) + sep + self.text(attrs)
        if P.is_secret_header(low):
            return self.token(value.strip()) if value.strip() else value
        return self.text(value)

    def _authorization(self, value: str) -> str:
        scheme, sep, rest = value.strip().partition(" ")
        if not sep:
            return self.token(value.strip()) if value.strip() else value
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
        key: ``curl -u sk_test_...:`` sends the key as the user, and services that take the
        key as the user ask for a placeholder password such as ``X``."""
        try:
            user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return self.token(token)
        if not sep or len(password) < _SHORT_PASSWORD:
            return self.token(user) + sep + (self.mark(password) if password else "")
        return f"{self.text(user)}:{self.mark(password)}"

    def _cookie(self, pair: str) -> str:
        name, sep, value = pair.partition("=")
        if not sep:
            return pair.strip() and self.mark(pair.strip())
        return f"{name.strip()}={self.mark(value.strip())}"

    # URLs and forms

    def query(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(self.text(k), self.token(v) if v and P.is_secret_name(k) else self.text(v))
                for k, v in pairs]

    def form(self, text: str) -> str:
        """A url-encoded form, pair by pair; untouched pairs keep their exact bytes."""
        out = []
        for pair in text.split("&"):
            raw_name, sep, raw_value = pair.partition("=")
            name, value = unquote_plus(raw_name), unquote_plus(raw_value)
            if P.is_secret_name(name) and value:
                out.append(f"{raw_name}{sep}{self.token(value)}")
                continue
            clean_name, clean = self.text(name), self.text(value)
            if clean == value and clean_name == name:
                out.append(pair)
                continue
            out.append(_form_quote(clean_name) + sep + _form_quote(clean))
        return "&".join(out)

    # bodies and data

    def body(self, body: bytes, content_type: str, *, whole: bool = True) -> bytes:
        """A request or response body with every secret replaced (binary bodies too:
        they are scanned byte for byte, so a key inside a multipart upload is found).
        ``whole=False`` says ``body`` is only the first part of a longer one: it is then
        redacted as text (a cut JSON document cannot be parsed)."""
        if not body:
            return body
        try:
            text, binary = body.decode("utf-8"), False
        except UnicodeDecodeError as e:
            if not whole and e.start >= len(body) - 3 and e.reason == "unexpected end of data":
                text, binary = body[:e.start].decode("utf-8"), False  # a character cut in half
                body = body[:e.start]
            else:
                text, binary = body.decode("latin-1"), True
        ctype = content_type.split(";")[0].strip().lower()
        json_like = not binary and (ctype.endswith("json") or text.lstrip()[:1] in ("{", "["))
        if json_like and whole:
            clean_json = self._json(text, body)
            if clean_json is not None:
                return clean_json
        if ctype == "application/x-www-form-urlencoded" and not binary:
            text = self.form(text)
        elif ctype.startswith("multipart/"):
            text = self._multipart(text, content_type)
        else:
            text = self._bounded_text(text, json_like)
        return text.encode("latin-1" if binary else "utf-8", "surrogateescape")

    def _json(self, text: str, body: bytes) -> bytes | None:
        """The redacted JSON document (``body`` itself when nothing changed), or None when it
        is not JSON that can be redacted structurally (invalid, or nested deeper than
        :data:`MAX_DEPTH`)."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if _depth_over(data, MAX_DEPTH):
            return None
        clean = self.data(data)
        if clean == data:
            return body
        return json.dumps(clean, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "backslashreplace")

    def _bounded_text(self, text: str, json_like: bool = False) -> str:
        # Bodies arrive already cut by the event builder; text() must not cut them again at
        # its per-value limit.
        if json_like:
            text = P.JSON_PAIR.sub(self._json_pair_match, text)
        return self.text(text, limit=len(text))

    def _json_pair_match(self, m: re.Match[str]) -> str:
        if not P.is_secret_name(m.group("name")):
            return m.group(0)
        value = m.group("value")
        if value.startswith('"'):
            inner = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
            return m.group("head") + '"' + self.token(inner) + '"'
        return m.group("head") + '"' + self.mark(value) + '"'

    def _multipart(self, text: str, content_type: str) -> str:
        """Part by part: a field with a secret name has its value replaced, every part is
        scanned as text. Linear: the body is split on its boundary, never searched with a
        pattern that spans parts."""
        m = _BOUNDARY.search(content_type)
        if m is None:
            return self._bounded_text(text)
        delimiter = "--" + (m.group(1) or m.group(2))
        parts = text.split(delimiter)
        out = [self._bounded_text(parts[0])]
        for part in parts[1:]:
            head, sep, value = part.partition("\r\n\r\n")
            if not sep:
                head, sep, value = part.partition("\n\n")
            name = _PART_NAME.search(head[:4096]) if sep else None
            if name is not None and P.is_secret_name(name.group(1)):
                tail = len(value) - len(value.rstrip("\r\n"))
                body, end = value[:len(value) - tail], value[len(value) - tail:]
                out.append(head + sep + (self.token(body) if body else "") + end)
            else:
                out.append(self._bounded_text(part))
        return delimiter.join(out)

    def data(self, node: Any, secret: bool = False, depth: int = 0) -> Any:
        """A JSON-like tree: values under secret keys, token shapes and card numbers. A tree
        nested deeper than :data:`MAX_DEPTH` keeps its shape to that depth; below it, each
        subtree is logged as its redacted JSON text."""
        if depth >= MAX_DEPTH and isinstance(node, (dict, list)):
            return self._deep(node, secret)
        if isinstance(node, dict):
            return self._dict(node, secret, depth + 1)
        if isinstance(node, (list, tuple)):
            return [self._value(v, secret, depth + 1) for v in node]
        if node is None or isinstance(node, bool):
            return node
        if secret:
            return self.token(node) if isinstance(node, str) else self.mark(str(node))
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, int) and P.card_digits(str(node)):
            return self.text(str(node))
        if isinstance(node, (int, float)):
            return node
        return self.text(str(node))

    def _dict(self, node: dict[Any, Any], secret: bool, depth: int) -> dict[str, Any]:
        """:meth:`data` of a dict's members (``depth`` is theirs)."""
        text, value, secret_name = self.text, self._value, P.is_secret_name
        out: dict[str, Any] = {}
        for k, v in node.items():
            name = k if type(k) is str else str(k)
            out[text(name)] = value(v, secret or secret_name(name), depth)
        return out

    def _value(self, node: Any, secret: bool, depth: int) -> Any:
        """:meth:`data`, answering the common leaves (short strings, small integers, None,
        booleans) without the general dispatch; the same result."""
        kind = type(node)
        if kind is str and not secret:
            if len(node) <= self.text_limit:  # text() would not cut it: its cache holds it
                if len(node) < P.MIN_SECRET_TEXT:
                    return node
                hit = self._cache.get(node)
                if hit is not None:
                    return hit
            return self.text(node)
        if node is None or kind is bool:
            return node
        if kind is int and not secret and -_NOT_A_CARD < node < _NOT_A_CARD:
            return node  # 12 digits at most: no card number (13 to 19)
        return self.data(node, secret, depth)

    def _deep(self, node: Any, secret: bool) -> str:
        if secret:
            return self.mark("deep")
        try:
            text = json.dumps(node, ensure_ascii=False, separators=(",", ":"), default=str)
        except (ValueError, RecursionError, TypeError):
            return "[not logged: nested too deeply]"
        return self._bounded_text(text)


_KEY_VALUE_ANY_CASE = re.compile(P.KEY_VALUE.pattern, re.IGNORECASE)
_NOT_A_CARD = 10 ** 12  # an integer this small in magnitude has too few digits for a card
_CACHED_LEN = 256  # texts up to this long are remembered: header values and ids repeat
_CACHE_SIZE = 8192
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^\s;]{1,200}))', re.IGNORECASE)
_PART_NAME = re.compile(r'\bname="([^"\r\n]{0,256})"', re.IGNORECASE)


def _depth_over(node: Any, limit: int) -> bool:
    """Whether a parsed JSON tree nests deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(node, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= limit:
                return True
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth >= limit:
                return True
            stack.extend((v, depth + 1) for v in item)
    return False


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    return f"{text[:limit]}…[{len(text) - limit} more characters not logged]"


def _form_quote(text: str) -> str:
    return quote(text, safe="[]:.@,/ ", errors="surrogateescape").replace(" ", "+")


def _kept(m: re.Match[str]) -> str:
    for name, value in m.groupdict().items():
        if value is not None and name.startswith("keep"):
            return value
    return ""
