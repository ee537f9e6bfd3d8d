"""Resource limits: what one sandbox may make guard hold, and how much it may unpack.

The limits themselves are run options (guard/options.py, "limits" block); this module has
the rule ids they refuse under and the pure parts: :func:`decode_body` unpacks a request
body's ``Content-Encoding`` (gzip, deflate, br, zstd, or a list of them) without ever
producing more than the limit, so a 149 KiB gzip bomb costs guard at most the limit, not
the 150 MiB it inflates to.

>>> import gzip
>>> decode_body(gzip.compress(b"a" * 100), "gzip", max_size=1000, max_ratio=0)
b'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
aaaaaaaa'
>>> decode_body(gzip.compress(b"a" * 5000), "gzip", max_size=1000, max_ratio=0)
Traceback (most recent call last):
...
guard.limits.LimitExceeded: guard.limit.decoded-size: the request body (Content-Encoding: \
gzip) unpacks to more than 1000 bytes (--max-decoded-size)
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import brotli
import zstandard

from guard.errors import GuardError

BODY_RULE = "guard.limit.body-size"  # request body over --max-body-size (413)
DECODED_RULE = "guard.limit.decoded-size"  # unpacked body over --max-decoded-size (413)
RATIO_RULE = "guard.limit.decode-ratio"  # unpacked / packed over --max-decode-ratio (413)
WORLD_RULE = "guard.limit.world"  # a sandbox's world is full (--max-world-objects/-bytes)
NESTING_RULE = "guard.limit.nesting"  # a form key nested deeper than FORM_DEPTH (400)
FORM_DEPTH = 100  # what Rack, which Stripe runs on, allows (Rack::Utils param_depth_limit)
CONNECTIONS_RULE = "guard.limit.connections"  # --max-client-connections (connection refused)
HEADER_TIMEOUT_RULE = "guard.limit.header-timeout"  # no full request head in time

# the simulator option that carries (--max-world-objects, --max-world-bytes)
WORLD_LIMITS_OPTION = "world_limits"

# defaults of the options (guard/options.py)
DEFAULT_MAX_BODY = 32 * 1024 * 1024
DEFAULT_MAX_DECODED = 64 * 1024 * 1024
DEFAULT_MAX_RATIO = 200
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_HEADER_TIMEOUT = 30.0
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_WORLD_IDLE_EVICT = 3600.0
DEFAULT_MAX_WORLD_OBJECTS = 50_000
DEFAULT_MAX_WORLD_BYTES = 64 * 1024 * 1024

# The ratio is only judged above this many unpacked bytes: small, repetitive JSON packs
# far better than 100:1 and is no threat.
RATIO_FLOOR = 1024 * 1024
_CHUNK = 256 * 1024


class LimitExceeded(GuardError):
    """A request goes over one of guard's limits; ``rule_id`` names which, ``status`` is
    the HTTP status it is refused with."""

    def __init__(self, rule_id: str, message: str, status: int = 413) -> None:
        self.rule_id = rule_id
        self.status = status
        super().__init__(f"{rule_id}: {message}")
        self.reason = message


class _Over(Exception):
    pass


def decode_body(raw: bytes, content_encoding: str, *, max_size: int, max_ratio: int) -> bytes:
    """``raw`` unpacked as ``content_encoding`` says (outermost coding last, as in the
    header). Raises :class:`LimitExceeded` as soon as the output would pass ``max_size``
    bytes (0: no limit), or ``max_ratio`` times the packed size once past
    :data:`RATIO_FLOOR` (0: no limit). A coding guard does not know, or data that is not
    what it says, is kept as sent (as mitmproxy does): rules then see the packed bytes.
    """
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c not in ("identity", "none")]
    if not raw or not codings or any(c not in _DECODERS for c in codings):
        return raw
    cap = max_size if max_size > 0 else 1 << 62
    if max_ratio > 0:
        cap = min(cap, max(RATIO_FLOOR, len(raw) * max_ratio))
    body = raw
    try:
        for coding in reversed(codings):
            body = _DECODERS[coding](body, cap)
    except _Over:
        named = f"Content-Encoding: {content_encoding.strip()}"
        if max_size > 0 and cap == max_size:
            raise LimitExceeded(DECODED_RULE, f"the request body ({named}) unpacks to more "
                                f"than {max_size} bytes (--max-decoded-size)") from None
        raise LimitExceeded(RATIO_RULE, f"the request body ({named}) unpacks to more than "
                            f"{max_ratio} times its {len(raw)} bytes "
                            "(--max-decode-ratio)") from None
    except Exception:  # not what the header says: kept as sent
        return raw
    return body


def _inflate(data: bytes, cap: int, wbits: int) -> bytes:
    out = bytearray()
    while data:
        d = zlib.decompressobj(wbits)
        out += d.decompress(data, cap + 1 - len(out))
        if len(out) > cap or d.unconsumed_tail:
            raise _Over
        out += d.flush(_CHUNK)
        if len(out) > cap:
            raise _Over
        if not d.eof:
            raise ValueError("truncated")
        # the next gzip member (gzip -c a b); anything else after the end is ignored
        data = d.unused_data if wbits == 47 and d.unused_data[:2] == b"\x1f\x8b" else b""
    return bytes(out)


def _gzip(data: bytes, cap: int) -> bytes:
    return _inflate(data, cap, 47)  # gzip or zlib header, as mitmproxy


def _deflate(data: bytes, cap: int) -> bytes:
    try:
        return _inflate(data, cap, 15)
    except zlib.error:
        return _inflate(data, cap, -15)  # raw deflate, which some clients send


def _brotli(data: bytes, cap: int) -> bytes:
    d = brotli.Decompressor()
    out = bytearray(d.process(data, output_buffer_limit=cap + 1))
    while len(out) <= cap and not d.can_accept_more_data():
        chunk = d.process(b"", output_buffer_limit=cap + 1 - len(out))
        if not chunk:
            break
        out += chunk
    if len(out) > cap:
        raise _Over
    if not d.is_finished():
        raise ValueError("truncated")
    return bytes(out)


def _zstd(data: bytes, cap: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data),
                                                        read_across_frames=True)
    out = bytearray()
    while True:
        chunk = reader.read(min(_CHUNK, cap + 1 - len(out)))
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > cap:
            raise _Over


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli, "zstd": _zstd,
}
