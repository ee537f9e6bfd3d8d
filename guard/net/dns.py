"""A stub DNS server for sandboxes: every name resolves to one address, guard's own.

A jailed or gatewayed sandbox may not send UDP anywhere (DNS would be a way
around guard), yet its programs must resolve names before they connect. Inside
a transparent setup any address works, because every TCP connection to port 80
or 443 ends at guard, and guard decides on the TLS SNI and the Host header, never
on the address. So this server answers every ``A`` query with one fixed IPv4
address and every other query type with an empty answer (so clients use IPv4).

>>> query = bytes.fromhex("1234010000010000000000000361706906737472697065"
...                       "03636f6d0000010001")
>>> reply = answer(query, "10.213.0.1")
>>> reply[:4].hex(), reply[-4:] == bytes([10, 213, 0, 1])
('12348580', True)
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct

log = logging.getLogger("guard")

TYPE_A = 1
CLASS_IN = 1
TTL = 30
_HEADER = struct.Struct("!HHHHHH")


def _question_end(packet: bytes) -> int:
    """Offset just past the question's name, type and class; ValueError if malformed."""
    i = _HEADER.size
    while True:
        if i >= len(packet):
            raise ValueError("truncated name")
        length = packet[i]
        if length == 0:
            i += 1
            break
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        i += 1 + length
    if i + 4 > len(packet):
        raise ValueError("truncated question")
    return i + 4


def answer(query: bytes, address: str) -> bytes | None:
    """The reply to one DNS query packet, or None when it is not worth answering."""
    if len(query) < _HEADER.size:
        return None
    ident, flags, qdcount, _, _, _ = _HEADER.unpack_from(query)
    if flags & 0x8000:  # a response, not a query
        return None
    opcode = (flags >> 11) & 0xF
    rd = flags & 0x0100
    if opcode != 0 or qdcount != 1:
        return _HEADER.pack(ident, 0x8000 | (opcode << 11) | rd | 0x0080 | 4, 0, 0, 0, 0)
    try:
        end = _question_end(query)
    except ValueError:
        return _HEADER.pack(ident, 0x8000 | rd | 0x0080 | 1, 0, 0, 0, 0)  # FORMERR
    question = query[_HEADER.size:end]
    qtype, qclass = struct.unpack_from("!HH", query, end - 4)
    records = b""
    if qtype == TYPE_A and qclass == CLASS_IN:
        records = (b"\xc0\x0c" + struct.pack("!HHIH", TYPE_A, CLASS_IN, TTL, 4)
                   + ipaddress.IPv4Address(address).packed)
    flags_out = 0x8000 | 0x0400 | rd | 0x0080  # response, authoritative, RD copied, RA
    return _HEADER.pack(ident, flags_out, 1, 1 if records else 0, 0, 0) + question + records


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, address: str) -> None:
        self.address = address
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = answer(data, self.address)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve(host: str, port: int, address: str) -> asyncio.DatagramTransport:
    """Answer DNS queries on ``host:port`` (UDP) with ``address`` until the transport closes.

    The bound port is ``transport.get_extra_info("sockname")[1]`` (useful with port 0)."""
    ipaddress.IPv4Address(address)  # ValueError early, not per query
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Responder(address), local_addr=(host, port))
    bound = transport.get_extra_info("sockname")  # the real port when asked for 0
    log.info("guard: DNS stub on %s:%s answers %s", host, bound[1] if bound else port, address)
    return transport
