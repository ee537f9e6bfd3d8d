"""guard's DNS stub: every A query gets guard's address, other types an empty answer."""

from __future__ import annotations

import socket
import struct

import pytest

from guard.net.dns import answer
from guard.options import Options
from guard.proxy.embedded import RunningGuard


def query(name: str, qtype: int = 1, ident: int = 0x4242) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + struct.pack(
        "!HH", qtype, 1)


def parse(reply: bytes) -> tuple[int, int, int, list[str]]:
    ident, flags, _, ancount, _, _ = struct.unpack_from("!HHHHHH", reply)
    addresses = []
    if ancount:
        rdata = reply[-4:]
        addresses.append(socket.inet_ntoa(rdata))
    return ident, flags & 0xF, ancount, addresses


def test_an_a_query_is_answered_with_guards_address():
    assert parse(answer(query("api.stripe.com"), "10.9.8.7")) == (0x4242, 0, 1, ["10.9.8.7"])


def test_an_aaaa_query_gets_an_empty_answer_so_clients_use_ipv4():
    assert parse(answer(query("api.stripe.com", qtype=28), "10.9.8.7")) == (0x4242, 0, 0, [])


@pytest.mark.parametrize(("packet", "rcode"), [
    (query("x.test")[:15], 1),                                     # truncated question
    (struct.pack("!HHHHHH", 1, 0x2800, 1, 0, 0, 0) + b"\0\0\1\0\1", 4),  # UPDATE: not impl.
])
def test_malformed_and_unsupported_queries_get_an_error_code(packet, rcode):
    assert parse(answer(packet, "10.9.8.7"))[1] == rcode


def test_responses_and_runts_are_ignored():
    assert answer(b"\0" * 5, "10.9.8.7") is None
    response = bytearray(query("x.test"))
    response[2] |= 0x80
    assert answer(bytes(response), "10.9.8.7") is None


def test_guard_run_serves_the_stub_next_to_the_proxy(confdir, tmp_path):
    cfg = Options(listen_port=0, confdir=confdir, quiet=True, state=None, audit=tmp_path / "a.jsonl",
                    dns_listen=("127.0.0.1", 0), dns_answer="10.1.2.3")
    with RunningGuard(cfg) as g:
        assert g.master is not None and g.master.dns_addr is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(query("anything.example"), g.master.dns_addr)
            reply, _ = s.recvfrom(512)
    assert parse(reply) == (0x4242, 0, 1, ["10.1.2.3"])
