"""How large a request's head may be, and guard's answer when it is larger.

An agent controls the request line and the headers, and mitmproxy would read a head of
any size (its HTTP/1 reader has no limit). guard refuses, under a named rule, a request
whose URL is longer than ``url_bytes`` (414, ``guard.url-too-long``) or whose headers
take more than ``header_bytes`` (431, ``guard.header-too-large``), before anything
looks at its content; the answer is guard's JSON error whatever the host is, and the
refusal is audited with a bounded copy of the request (:func:`bounded_request`), so the
audit path does no more work for a 2 MiB head than for a small one. A head still arriving
past :attr:`HeadLimits.head_bytes` is refused as it stands (guard/proxy/http1.py).

>>> limits = HeadLimits(header_bytes=100, url_bytes=50)
>>> limits.check(url_bytes=10, header_bytes=99) is None
True
>>> r = limits.check(url_bytes=51, header_bytes=10)
>>> r.status, r.rule_id, r.response().status
(414, 'guard.url-too-long', 414)
>>> limits.check(url_bytes=10, header_bytes=101).rule_id
'guard.header-too-large'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from guard.blocked import block_response
from guard.decision import Action, Decision
from guard.request import Response

HEADER_RULE_ID = "guard.header-too-large"
URL_RULE_ID = "guard.url-too-long"
TRAILERS_RULE_ID = "guard.request-trailers"
UNREADABLE_RULE_ID = "guard.request-unreadable"
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_URL_BYTES = 16 * 1024
HEAD_SLACK = 1024  # the method, the version and line ends, beyond the URL and headers

KEPT_PATH = 2048  # characters of the path of a refused request kept for the audit log
KEPT_HEADERS = 64  # headers of a refused request kept (name and value, if short)
KEPT_VALUE = 1024  # a longer header value is logged as its size only


@dataclass(frozen=True)
class HeadLimits:
    """The limits of one guard (``--max-header-bytes``, ``--max-url-bytes``)."""

    header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    url_bytes: int = DEFAULT_MAX_URL_BYTES

    @property
    def head_bytes(self) -> int:
        """A head still incomplete past this many bytes is refused without waiting for
        its end."""
        return self.header_bytes + self.url_bytes + HEAD_SLACK

    def check(self, *, url_bytes: int, header_bytes: int) -> Refusal | None:
        """The refusal of a head of these sizes, or None when it is within the limits."""
        if url_bytes > self.url_bytes:
            return url_refusal(self.url_bytes)
        if header_bytes > self.header_bytes:
            return header_refusal(self.header_bytes)
        return None


@dataclass(frozen=True)
class Refusal:
    """A request guard refuses before deciding it: status, rule and why."""

    status: int
    rule_id: str
    reason: str

    @property
    def decision(self) -> Decision:
        return Decision(Action.BLOCK, self.rule_id, self.reason)

    def response(self) -> Response:
        """guard's JSON error (the block shape, with this status); the connection is
        closed after it, since the rest of what the client sends is not read."""
        r = block_response(self.decision, status=self.status)
        return Response(r.status, [*r.headers, ("Connection", "close")], r.body)


def url_refusal(limit: int) -> Refusal:
    return Refusal(414, URL_RULE_ID, f"the request URL is longer than {limit} bytes "
                   "(--max-url-bytes)")


def header_refusal(limit: int) -> Refusal:
    return Refusal(431, HEADER_RULE_ID, f"the request headers take more than {limit} bytes "
                   "(--max-header-bytes)")


TRAILERS = Refusal(400, TRAILERS_RULE_ID, "the request has trailers (header fields after a "
                   "chunked body), which guard does not accept: send them as headers")


def unreadable(why: str) -> Refusal:
    """A request guard could not read to its end (a broken chunked body, ...)."""
    return Refusal(400, UNREADABLE_RULE_ID, f"guard could not read this request: {why}")


def header_bytes(fields: Iterable[tuple[bytes, bytes]]) -> int:
    """The size of header fields as HTTP/1 sends them (``name: value\\r\\n``)."""
    return sum(len(name) + len(value) + 4 for name, value in fields)


def bounded_headers(fields: Iterable[tuple[bytes, bytes]], *,
                    omit: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    """The headers of a refused request as the audit log keeps them: the first
    :data:`KEPT_HEADERS` (except ``omit``, guard's own), names lower-case, a value longer
    than :data:`KEPT_VALUE` bytes given by its size only, and how many more there were.
    Only what is kept is decoded, so what the redactor then reads is small whatever the
    request held.

    >>> bounded_headers([(b"X-Big", b"b" * 2000), (b"Accept", b"*/*"), (b"X-Guard-Sandbox", b"t")],
    ...                 omit=["x-guard-sandbox"])
    (('x-big', '[2000 bytes, not kept]'), ('accept', '*/*'))
    """
    skip = {name.lower() for name in omit}
    kept: list[tuple[str, str]] = []
    more = 0
    for raw_name, raw_value in fields:
        name = raw_name[:256].decode("utf-8", "surrogateescape").lower()
        if name in skip:
            continue
        if len(kept) >= KEPT_HEADERS:
            more += 1
            continue
        value = raw_value.decode("utf-8", "surrogateescape") if len(raw_value) <= KEPT_VALUE \
            else f"[{len(raw_value)} bytes, not kept]"
        kept.append((name, value))
    if more:
        kept.append(("x-guard-omitted", f"{more} more headers"))
    return tuple(kept)


def bounded_path(path: str) -> str:
    """The path of a refused request, its first :data:`KEPT_PATH` characters.

    >>> len(bounded_path("/" + "a" * 5000))
    2049
    """
    return path if len(path) <= KEPT_PATH else path[:KEPT_PATH] + "…"
