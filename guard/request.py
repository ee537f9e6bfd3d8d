"""guard's own request and response types: plain data, no mitmproxy.

The addon converts a mitmproxy flow into a :class:`Request` once; the engine,
the synthesizer, the world store and the audit log only ever see this type.

>>> r = Request.build("POST", "https://api.stripe.com/v1/customers?expand[]=x",
...                   headers={"Content-Type": "application/x-www-form-urlencoded"},
...                   body=b"email=a%40b.c&metadata[plan]=pro")
>>> r.host, r.path, r.form["metadata"]["plan"], r.query_first("expand[]")
('api.stripe.com', '/v1/customers', 'pro', 'x')
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from guard.limits import FORM_DEPTH, NESTING_RULE, LimitExceeded
from guard.multipart import UploadedFile, parse_multipart
from guard.urlpath import normalize

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Request:
    """An outbound HTTP request as guard sees it. Header names are lower-case."""

    method: str
    scheme: str
    host: str
    port: int
    path: str
    query: Pairs = ()
    headers: Pairs = ()
    body: bytes = b""
    client: str = ""
    sandbox: str = "default"
    sni: str | None = None
    # the path as the client sent it; ``path`` is its normal form (guard/urlpath.py), which
    # rules match and allowed requests are forwarded with. "" when they are the same.
    raw_path: str = ""

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes | str = b"",
        client: str = "",
        sandbox: str = "default",
    ) -> Request:
        """Build a request from a URL, as ``guard explain`` and tests do."""
        parts = urlsplit(url if "://" in url else f"https://{url}")
        scheme = parts.scheme or "https"
        port = parts.port or (443 if scheme in ("https", "wss") else 80)
        items = headers.items() if isinstance(headers, Mapping) else headers
        if isinstance(body, str):
            body = body.encode()
        raw_path = parts.path or "/"
        path = normalize(raw_path)
        return cls(
            method=method.upper(),
            scheme=scheme,
            host=(parts.hostname or "").lower(),
            port=port,
            path=path,
            raw_path="" if raw_path == path else raw_path,
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
            headers=tuple((k.lower(), v) for k, v in items),
            body=body,
            client=client,
            sandbox=sandbox,
        )

    @property
    def sent_path(self) -> str:
        """The path exactly as the client sent it."""
        return self.raw_path or self.path

    @property
    def url(self) -> str:
        default = 443 if self.scheme in ("https", "wss") else 80
        netloc = self.host if self.port == default else f"{self.host}:{self.port}"
        qs = "&".join(f"{k}={v}" if v != "" else k for k, v in self.query)
        return f"{self.scheme}://{netloc}{self.path}" + (f"?{qs}" if qs else "")

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    @cached_property
    def header_map(self) -> dict[str, str]:
        """Headers as a dict (first value wins), lower-case names."""
        out: dict[str, str] = {}
        for k, v in self.headers:
            out.setdefault(k, v)
        return out

    @cached_property
    def query_map(self) -> dict[str, Any]:
        """The query string, nested like a form (``a[b]=c`` becomes ``{"a": {"b": "c"}}``)."""
        return nest_pairs(self.query)

    def query_first(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    @cached_property
    def credentials(self) -> tuple[str, ...]:
        """The secrets in the Authorization header: a Bearer/Token token, or the Basic
        user and password (decoded). ``curl -u sk_live_x:`` yields ``("sk_live_x", "")``."""
        value = self.header("authorization")
        if not value:
            return ()
        scheme, _, rest = value.strip().partition(" ")
        rest = rest.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(rest, validate=False).decode("utf-8", "replace")
            except ValueError:
                return (rest,)
            user, _, password = decoded.partition(":")
            return (user, password)
        return (rest,) if rest else (scheme,)

    @cached_property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def form_pairs(self) -> Pairs:
        """The url-encoded or multipart form fields as ordered pairs (files excluded)."""
        if self.content_type == "application/x-www-form-urlencoded":
            return tuple(parse_qsl(self.text, keep_blank_values=True))
        if self.content_type == "multipart/form-data":
            return tuple((k, v) for k, v in self.multipart_fields if isinstance(v, str))
        return ()

    @cached_property
    def form(self) -> dict[str, Any]:
        """Form fields nested Stripe-style:
        ``items[0][price]=p`` -> ``{"items": [{"price": "p"}]}``."""
        return nest_pairs(self.form_pairs)

    @cached_property
    def multipart_fields(self) -> tuple[tuple[str, str | UploadedFile], ...]:
        """Multipart parts in order; file parts become :class:`UploadedFile`."""
        if self.content_type != "multipart/form-data":
            return ()
        return parse_multipart(self.header("content-type") or "", self.body)

    @cached_property
    def json(self) -> Any:
        """The JSON body, or ``None`` when the body is not JSON."""
        if not self.body:
            return None
        ct = self.content_type
        if ct and not (ct == "application/json" or ct.endswith("+json") or ct == "text/plain"):
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # nested deeper than Python's parser goes
            return None


@dataclass
class Response:
    """A response guard synthesized (simulate, block or error)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @classmethod
    def json(cls, status: int, data: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
        return cls(status, [("Content-Type", "application/json"), *headers], json_bytes(data))


def json_bytes(data: Any) -> bytes:
    """``data`` as compact UTF-8 JSON; a string holding a lone surrogate (a JSON request's
    ``"\\ud800"``, which UTF-8 cannot carry) goes out escaped, as the client sent it, and
    the rest as ASCII escapes with it, instead of failing the answer."""
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(data, separators=(",", ":")).encode()


def split_key(key: str) -> list[str]:
    """Split a bracketed form key: ``a[b][0]`` -> ``["a", "b", "0"]``, ``e[]`` -> ``["e", ""]``."""
    if "[" not in key:
        return [key]
    head, _, rest = key.partition("[")
    parts = [head]
    for chunk in rest.split("["):
        parts.append(chunk[:-1] if chunk.endswith("]") else chunk)
    return parts


def nest_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest form pairs the way Stripe and Rails read them.

    >>> nest_pairs([("a[b]", "1"), ("l[]", "x"), ("l[]", "y"), ("i[0][p]", "q")])
    {'a': {'b': '1'}, 'l': ['x', 'y'], 'i': [{'p': 'q'}]}
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        if len(parts) - 1 > FORM_DEPTH:  # the nesting would outrun every recursive reader
            raise LimitExceeded(NESTING_RULE, f"form key {key[:40]!r}... is nested "
                                f"{len(parts) - 1} levels deep; guard takes {FORM_DEPTH}", 400)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "" and isinstance(node, list):
                if last:
                    node.append(value)
                else:
                    node.append({})
                    node = node[-1]
                continue
            if not isinstance(node, dict):
                break  # conflicting shapes (a=1 and a[b]=2): keep the first
            if last:
                node[part] = value
            else:
                nxt = parts[i + 1]
                default: Any = [] if nxt == "" else {}
                child = node.setdefault(part, default)
                if not isinstance(child, (dict, list)):
                    break
                node = child
    nested: dict[str, Any] = _listify(root)
    return nested


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _listify(v) for k, v in node.items()}
        if out and all(k.isascii() and k.isdigit() for k in out):
            return [out[k] for k in sorted(out, key=int)]
        return out
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def dig(data: Any, path: str) -> tuple[bool, Any]:
    """Look up a dotted path (``a.b.0.c``; bracket keys ``a[b]`` work too) in nested data."""
    node = data
    for part in _path_parts(path):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif (isinstance(node, list) and part.isascii() and part.isdigit()
              and int(part) < len(node)):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _path_parts(path: str) -> list[str]:
    parts: list[str] = []
    for dotted in path.split("."):
        parts.extend(p for p in split_key(dotted) if p != "")
    return parts
