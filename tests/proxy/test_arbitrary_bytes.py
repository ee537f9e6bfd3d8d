"""Whatever bytes a request holds, through a real guard proxy: arbitrary bytes in the
method, path, query, header names and values and the body (the framing, Content-Length,
is the test's) always get an HTTP answer, are exactly one audit event each, never open
an upstream connection, and leave a log that ``guard audit verify`` accepts."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.audit import reader
from guard.audit.verify import verify
from tests.rawhttp import exchange

FRAMING = {b"content-length", b"transfer-encoding", b"host", b"expect"}
HOSTS = ["api.stripe.com", "api.sendgrid.com", "slack.com", "unknown.example.org"]


def no(*excluded: int, min_size: int = 0, max_size: int = 64) -> st.SearchStrategy[bytes]:
    """Bytes without the given ones (they would end the line or the field)."""
    return st.binary(min_size=min_size, max_size=max_size).map(
        lambda b: bytes(c for c in b if c not in excluded))


header = st.tuples(no(ord(":"), 13, 10, min_size=1, max_size=24), no(13, 10, max_size=200))
requests_ = st.fixed_dictionaries({
    "host": st.sampled_from(HOSTS),
    "method": no(ord(" "), 13, 10, min_size=1, max_size=12).filter(bool),
    "path": no(ord(" "), 13, 10, ord("?"), ord("#"), max_size=120),
    "query": no(ord(" "), 13, 10, ord("#"), max_size=120),
    "headers": st.lists(header, max_size=6),
    "body": st.binary(max_size=3000),
})


def raw(req: dict) -> bytes:
    lines = [b"%s http://%s/%s?%s HTTP/1.1" % (req["method"], req["host"].encode(),
                                               req["path"], req["query"]),
             b"Host: " + req["host"].encode()]
    lines += [name + b": " + value for name, value in req["headers"]
              if name.strip().lower() not in FRAMING]
    lines.append(b"Content-Length: %d" % len(req["body"]))
    return b"\r\n".join(lines) + b"\r\n\r\n" + req["body"]


def count(log) -> int:
    return sum(1 for _ in reader.events([log]))


def test_arbitrary_bytes_in_any_part_are_one_event_each_and_the_log_verifies(
        guard_proxy, tmp_path):
    g = guard_proxy()
    log = tmp_path / "audit.jsonl"
    sent = [0]

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(requests_)
    def one_request(req: dict) -> None:
        before = count(log)
        got = exchange(g.port, raw(req))
        sent[0] += 1
        status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else 0
        assert 200 <= status < 600, (req, got[:200])
        for _ in range(600):  # an event written as the flow ends may follow the answer
            if count(log) > before:
                break
            time.sleep(0.02)
        assert count(log) == before + 1, req

    one_request()
    assert count(log) == sent[0]
    assert g.upstream_attempts == []
    verdict = verify([log])
    assert verdict.ok, verdict
