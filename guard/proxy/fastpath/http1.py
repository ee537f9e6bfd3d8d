"""HTTP/1.1 for the fast path: read one request from a tunnel, write one response.

Strict on purpose, since whatever is read here is decided by name and answered by guard:
a request line of three parts with HTTP/1.0 or HTTP/1.1, header lines ``name: value``
with a token for a name (no space before the colon, no folded lines), a body by
``Content-Length`` (one value) or ``Transfer-Encoding: chunked`` (never both), within
:data:`MAX_BODY`. Anything else is a :class:`BadRequest`: answered with its status, and
the connection closed.

>>> parse_head(b"POST /v1/x?a=1 HTTP/1.1\\r\\nHost: a.test\\r\\n\\r\\n").target
'/v1/x?a=1'
>>> parse_head(b"GET / HTTP/1.1\\r\\nHost : a.test\\r\\n\\r\\n")
Traceback (most recent call last):
...
guard.proxy.fastpath.http1.BadRequest: 400: bad header line 'Host : a.test'
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from mitmproxy.net.http import status_codes

from guard import head_limits
from guard.head_limits import HeadLimits, Refusal
from guard.limits import BODY_RULE

MAX_BODY = 64 * 1024 * 1024  # a bigger request body gets a 413 and the connection ends
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Refused(Exception):
    """A request refused under one of guard's named limits (head, body, trailers): the
    exchange audits and answers it; ``head`` is what was read of it."""

    def __init__(self, refusal: Refusal, head: Head) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal
        self.head = head


@dataclass
class Head:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]  # as sent, in order (names in their own case)

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (any case)."""
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for v in self.all("connection") for t in v.split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")  # what mitmproxy's flows hold


def parse_head(raw: bytes) -> Head:
    """The request line and headers (``raw`` ends with the blank line)."""
    lines = raw[:-4].split(b"\r\n") if raw.endswith(b"\r\n\r\n") else raw.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise BadRequest(400, f"bad request line {_text(lines[0])!r}")
    version = parts[2]
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest(505, f"HTTP version {_text(version)!r} is not served here")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN.fullmatch(name):
            raise BadRequest(400, f"bad header line {_text(line)!r}")
        if b"\r" in value or b"\n" in value or b"\x00" in value:
            raise BadRequest(400, f"bad characters in header {_text(name)!r}")
        headers.append((_text(name), _text(value.strip(b" \t"))))
    return Head(_text(parts[0]), _text(parts[1]), _text(version), headers)


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       limits: HeadLimits, max_body: int, *, head_deadline: float | None = None,
                       idle_timeout: float | None = None) -> tuple[Head, bytes] | None:
    """The next request on the connection (head and body), or None when the client
    closed it between requests or sent no whole head by ``head_deadline`` (the loop's
    time: --header-timeout; the connection is then closed quietly, as mitmproxy closes a
    tunnel). Raises BadRequest, or Refused for a head over ``limits``, a body over
    ``max_body`` bytes (0: :data:`MAX_BODY`) or trailers; TimeoutError when no byte of
    the body came for ``idle_timeout`` seconds (--idle-timeout)."""
    try:
        async with asyncio.timeout_at(head_deadline):
            raw = await reader.readuntil(b"\r\n\r\n")
    except TimeoutError:
        return None
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise BadRequest(400, "the connection ended inside a request head") from e
    except asyncio.LimitOverrunError as e:  # past the stream's buffer: refused as it stands
        raise _oversize(bytes(reader._buffer[:limits.head_bytes]), limits) from e  # type: ignore[attr-defined]
    raw = raw.lstrip(b"\r\n")  # RFC 9112 section 2.2: ignore empty lines before a request
    head = parse_head(raw)
    refusal = limits.check(
        url_bytes=len(head.target) + len(head.get("host") or ""),
        header_bytes=head_limits.header_bytes(
            (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
            for k, v in head.headers))
    if refusal is not None:
        raise Refused(refusal, head)
    limit = min(max_body, MAX_BODY) if max_body > 0 else MAX_BODY
    te, lengths = head.all("transfer-encoding"), head.all("content-length")
    if te and lengths:
        raise BadRequest(400, "both Transfer-Encoding and Content-Length")
    expect = head.get("expect")
    if expect is not None:
        if expect.strip().lower() != "100-continue":
            raise BadRequest(417, f"cannot meet expectation {expect!r}")
        # as mitmproxy does: answered here, and the header is not part of the request
        head.headers = [(k, v) for k, v in head.headers if k.lower() != "expect"]
        writer.write(CONTINUE)
    try:
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(",")]
            if codings != ["chunked"]:
                raise BadRequest(501, f"transfer coding {', '.join(te)!r} is not served here")
            body = await _chunked(_Idle(reader, idle_timeout), limit)
            if body is None:
                raise Refused(head_limits.TRAILERS, head)
            return head, body
        if not lengths:
            return head, b""
        if len(set(lengths)) != 1 or not lengths[0].isdigit() or not lengths[0].isascii():
            raise BadRequest(400, f"bad Content-Length {', '.join(lengths)!r}")
        size = int(lengths[0])
        if size > limit:
            raise Refused(body_refusal(limit), head)
        return head, await _Idle(reader, idle_timeout).readexactly(size)
    except asyncio.IncompleteReadError as e:
        raise BadRequest(400, "the connection ended inside a request body") from e


def _oversize(start: bytes, limits: HeadLimits) -> Refused:
    """The refusal of a head too large to read whole: the URL's when the request line has
    not ended, the headers' otherwise; with what could be read of it (bounded)."""
    line, ended, rest = start.lstrip(b"\r\n").partition(b"\r\n")
    parts = line.split(b" ", 2)
    method = _text(parts[0][:32]) if parts and parts[0] else "?"
    target = _text(parts[1][:head_limits.KEPT_PATH * 4]) if len(parts) > 1 else "/"
    headers: list[tuple[str, str]] = []
    for field in rest.split(b"\r\n")[:head_limits.KEPT_HEADERS]:
        name, sep, value = field.partition(b":")
        if sep and TOKEN.fullmatch(name):
            headers.append((_text(name), _text(value.strip(b" \t")[:1024])))
    refusal = head_limits.header_refusal(limits.header_bytes) if ended \
        else head_limits.url_refusal(limits.url_bytes)
    return Refused(refusal, Head(method, target, "HTTP/1.1", headers))


def body_refusal(limit: int) -> Refusal:
    return Refusal(413, BODY_RULE, f"the request body is larger than the limit of {limit} "
                   "bytes (--max-body-size)")


class _Idle:
    """Reads of a body, each within ``timeout`` seconds of the last byte (None: no limit)."""

    def __init__(self, reader: asyncio.StreamReader, timeout: float | None) -> None:
        self.reader, self.timeout = reader, timeout

    async def readuntil(self, separator: bytes) -> bytes:
        async with asyncio.timeout(self.timeout):
            return await self.reader.readuntil(separator)

    async def readexactly(self, n: int) -> bytes:
        if self.timeout is None:
            return await self.reader.readexactly(n)
        parts: list[bytes] = []
        while n > 0:  # piece by piece: a slow big body is fine, a stalled one is not
            async with asyncio.timeout(self.timeout):
                part = await self.reader.read(min(n, 65536))
            if not part:
                raise asyncio.IncompleteReadError(b"".join(parts), None)
            parts.append(part)
            n -= len(part)
        return b"".join(parts)


async def _chunked(reader: _Idle, limit: int) -> bytes | None:
    """The body, or None when trailers follow it."""
    body = bytearray()
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as e:
            raise BadRequest(400, "bad chunk size line") from e
        size_text = line[:-2].split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
            raise BadRequest(400, f"bad chunk size {_text(size_text)!r}")
        size = int(size_text, 16)
        if len(body) + size > limit:
            raise BadRequest(413, f"request body over {limit} bytes (--max-body-size)")
        if size == 0:
            trailers = False
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                trailers = True
            return None if trailers else bytes(body)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest(400, "chunk not followed by CRLF")


def response_bytes(status: int, headers: list[tuple[str, str]], body: bytes,
                   *, send_body: bool = True) -> bytes:
    """The response as HTTP/1.1 bytes (``headers`` as they are: Content-Length included)."""
    reason = status_codes.RESPONSES.get(status, "")
    out = [f"HTTP/1.1 {status} {reason}\r\n".encode()]
    out += [k.encode("utf-8", "surrogateescape") + b": " + v.encode("utf-8", "surrogateescape")
            + b"\r\n" for k, v in headers]
    out.append(b"\r\n")
    if send_body:
        out.append(body)
    return b"".join(out)


def error_bytes(status: int, message: str) -> bytes:
    body = f"guard: {message}\n".encode("utf-8", "replace")
    return response_bytes(status, [("content-type", "text/plain; charset=utf-8"),
                                   ("content-length", str(len(body))),
                                   ("connection", "close")], body)
