"""HPACK for the fast path's answers: every field on its own, never through the dynamic
table, so a field's bytes do not depend on what came before and the fields guard sends
again and again (``content-type``, ``x-guard-rule``, a provider's version header) are
encoded once per process, not searched for and Huffman-coded in Python per answer.

A field in HPACK's static table, name and value, is its index; any other is a literal
"without indexing" (RFC 7541 section 6.2.2), its name by static index when there is one,
the value as plain octets; credentials and cookies are literals "never indexed" (section
6.2.3), as h2 marks them. The decoder's table stays empty, so the answers need nothing
from it; a change of its size the client asks for is still announced first, as h2's own
encoder does.

>>> from hpack import Decoder
>>> fields = [(b":status", b"200"), (b"content-type", b"application/json"),
...           (b"x-guard-rule", b"stripe.customers.create"), (b"set-cookie", b"a=b")]
>>> Decoder().decode(AnswerEncoder().encode(fields), raw=True) == fields
True
>>> field(b":status", b"200"), field(b"content-length", b"12")
(b'\\x88', b'\\x0f\\r\\x0212')
"""

from __future__ import annotations

from typing import Any

from hpack import Encoder, HeaderTuple
from hpack.hpack import encode_integer
from hpack.table import HeaderTable

# what a field in the static table is (index: the first of equal entries), and its names
_STATIC: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAMES: dict[bytes, int] = {}
for _i, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, 1):
    _STATIC.setdefault((_name, _value), _i)
    _STATIC_NAMES.setdefault(_name, _i)

NEVER_INDEXED = frozenset((b"authorization", b"proxy-authorization", b"cookie",
                           b"set-cookie"))
_CACHE_MAX = 4096
_cache: dict[tuple[bytes, bytes], bytes] = {}


def field(name: bytes, value: bytes) -> bytes:
    """One header field (a lower-case name), encoded on its own."""
    index = _STATIC.get((name, value))
    if index is not None:
        return bytes([0x80 | index])  # (every static index fits 7 bits)
    flag = 0x10 if name in NEVER_INDEXED else 0x00
    name_index = _STATIC_NAMES.get(name)
    if name_index is not None:
        head = encode_integer(name_index, 4)
        head[0] |= flag
        return bytes(head) + bytes(encode_integer(len(value), 7)) + value
    return (bytes([flag]) + bytes(encode_integer(len(name), 7)) + name +
            bytes(encode_integer(len(value), 7)) + value)


class AnswerEncoder(Encoder):
    """An h2 connection's encoder (``H2Connection.encoder``) for guard's answers."""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        out = []
        table = self.header_table
        if table.resized:
            out.append(self._encode_table_size_change())
            table.resized = False
        cache = _cache
        for header in headers:
            name, value = _octets(header[0]), _octets(header[1])
            if isinstance(header, HeaderTuple) and not header.indexable or \
                    len(header) > 2 and header[2]:
                out.append(field(name, value) if name in NEVER_INDEXED else
                           _never(name, value))
                continue
            encoded = cache.get((name, value))
            if encoded is None:
                encoded = field(name, value)
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[(name, value)] = encoded
            out.append(encoded)
        return b"".join(out)


def _never(name: bytes, value: bytes) -> bytes:
    """A field its sender marked sensitive, whatever its name: literal never indexed."""
    return (b"\x10" + bytes(encode_integer(len(name), 7)) + name +
            bytes(encode_integer(len(value), 7)) + value)


def _octets(s: bytes | str) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8")
