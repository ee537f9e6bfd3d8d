"""The fast path's HPACK encoder for answers (guard/proxy/fastpath/hpack_out.py): what it
encodes decodes to the same fields with any decoder state, sensitive fields are never
indexed, and a table size the client set is announced."""

from __future__ import annotations

import doctest
import random

from hpack import Decoder, NeverIndexedHeaderTuple
from hpack.table import HeaderTable

from guard.proxy.fastpath import hpack_out
from guard.proxy.fastpath.hpack_out import AnswerEncoder


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(hpack_out).failed == 0


def test_every_answer_decodes_to_its_fields_whatever_came_before() -> None:
    rand = random.Random(3)
    names = [n for n, _ in HeaderTable.STATIC_TABLE] + [b"x-guard-rule", b"a" * 200]
    values = [v for _, v in HeaderTable.STATIC_TABLE] + [b"", b"x" * 300, bytes(range(256))]
    encoder, decoder = AnswerEncoder(), Decoder()
    for _ in range(2000):
        if rand.random() < 0.02:  # the client changes its table size (SETTINGS)
            encoder.header_table_size = rand.choice([0, 100, 4096])
        fields = [(rand.choice(names), rand.choice(values)) for _ in range(rand.randrange(12))]
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
    assert not decoder.header_table.dynamic_entries  # nothing ever indexed


def test_credentials_and_cookies_are_never_indexed() -> None:
    fields = [(b"set-cookie", b"session=1"), (b"authorization", b"Bearer x"),
              (b"content-type", b"application/json")]
    decoded = Decoder().decode(AnswerEncoder().encode(fields), raw=True)
    assert [isinstance(f, NeverIndexedHeaderTuple) for f in decoded] == [True, True, False]


def test_a_table_size_change_is_announced_before_the_fields() -> None:
    encoder = AnswerEncoder()
    encoder.header_table_size = 0
    block = encoder.encode([(b":status", b"200")])
    assert block == b"\x20\x88"  # size update to 0, then :status 200 (static index 8)
    assert encoder.encode([(b":status", b"200")]) == b"\x88"
