"""Limits, through a real guard proxy: request bodies (refused before they are read),
bodies that unpack too far (gzip, deflate, br, zstd bombs), connections per client and
half-sent requests. Each refusal is clear (413/429/408 with a JSON error naming the rule),
audited, and leaves other sandboxes served: every test compares with a request of
another client address in the same test, never with a wall-clock constant.

Requests are written on sockets, byte for byte, from chosen loopback addresses (each
address is a sandbox: the default client-address identity).
"""

from __future__ import annotations

import gzip
import json
import socket
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import pytest
import zstandard

from guard.audit.reader import events as read_events
from guard.proxy.embedded import RunningGuard
from tests.upstream import Upstream

MiB = 1024 * 1024

RULES = """
pack: lab
rules:
  - id: lab.echo
    hosts: [sim.test]
    match: {{method: POST, path: /echo}}
    action: simulate
    respond: {{status: 200, body: {{size: "{{{{ request.text | length }}}}"}}}}
  - id: lab.hello
    hosts: [sim.test]
    match: {{method: GET, path: /hello}}
    action: simulate
    respond: {{status: 200, body: {{hello: "{{{{ request.client }}}}"}}}}
  - id: lab.up
    hosts: [up.test]
    action: allow
    allow_private: true
    ports: [{port}]
"""


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                 source_address=(source, 0))
    return s


def read_answer(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer (or what there is of it when the connection closes)."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            headers = _headers(head)
            if len(body) >= int(headers.get("content-length", "-1")) >= 0:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return 0, {}, b""
    return int(head.split()[1]), _headers(head), body


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def request(port: int, method: str, url: str, *headers: str, body: bytes = b"",
            source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    host = url.split("/")[2]
    lines = [f"{method} {url} HTTP/1.1", f"Host: {host}", "Connection: close", *headers]
    if body and not any(h.lower().startswith(("content-length", "transfer-encoding"))
                        for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    with connect(port, source) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return read_answer(s)


def hello(port: int, source: str) -> dict[str, Any]:
    """Another sandbox's simple simulated request: it must be answered, and correctly."""
    status, _, body = request(port, "GET", "http://sim.test/hello", source=source)
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    assert answer == {"hello": source}
    return answer


def events(path: Path, rule: str) -> list[dict[str, Any]]:
    return [e for e in read_events([path]) if e.get("rule") == rule]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream(body=b"x" * (3 * MiB))  # a download larger than the body limit
    yield up
    up.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, confdir: Path,
        upstream: Upstream) -> Iterator[RunningGuard]:
    tmp = tmp_path_factory.mktemp("limits")
    rules = tmp / "lab.yaml"
    rules.write_text(textwrap.dedent(RULES.format(port=upstream.port)))
    from guard.options import Options

    cfg = Options(rules=[str(rules)], listen_port=0, confdir=confdir, quiet=True,
                  audit=tmp / "audit.jsonl", state=None, max_body_size=MiB,
                  max_decoded_size=4 * MiB, max_decode_ratio=50)
    g = RunningGuard(cfg).__enter__()

    async def resolve(name: str, port: int) -> list[str]:
        return ["127.0.0.1"] if name.endswith(".test") else []

    g.egress.resolve = resolve
    yield g
    g.stop()


def audit_of(g: RunningGuard) -> Path:
    assert g.cfg.audit is not None
    return g.cfg.audit


# request body size


def test_a_body_larger_than_the_limit_by_its_length_is_refused_unread(
        lab: RunningGuard, upstream: Upstream) -> None:
    before = upstream.connections
    with connect(lab.port, "127.0.0.11") as s:
        s.sendall(b"POST http://up.test/upload HTTP/1.1\r\nHost: up.test\r\n"
                  b"Content-Length: 157286400\r\n\r\n" + b"a" * 1000)
        status, headers, body = read_answer(s)  # without sending the other 150 MiB
    assert status == 413
    assert headers["x-guard-rule"] == "guard.limit.body-size"
    error = json.loads(body)["error"]
    assert error["rule"] == "guard.limit.body-size" and "--max-body-size" in error["message"]
    assert upstream.connections == before  # allowed host, but nothing went upstream
    [event] = [e for e in events(audit_of(lab), "guard.limit.body-size")
               if e["url"].endswith("/upload")]
    assert event["action"] == "block" and event["sandbox"] == "127.0.0.11"
    hello(lab.port, "127.0.0.12")


def test_a_chunked_body_is_refused_once_it_passes_the_limit(lab: RunningGuard) -> None:
    chunk = b"b" * 65536
    with connect(lab.port, "127.0.0.13") as s:
        s.sendall(b"POST http://sim.test/echo HTTP/1.1\r\nHost: sim.test\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(150 * MiB // len(chunk)):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        status, headers, body = read_answer(s)
    assert status == 413  # (guard reads and drops the rest, so the answer is not lost)
    assert json.loads(body)["error"]["rule"] == "guard.limit.body-size"
    assert [e for e in events(audit_of(lab), "guard.limit.body-size")
            if e["sandbox"] == "127.0.0.13"]
    hello(lab.port, "127.0.0.14")


def test_a_refused_body_is_read_to_its_end_when_guard_had_read_all_it_was_sent(
        lab: RunningGuard) -> None:
    # The body passes the limit with the last byte sent, and the client sends nothing more
    # until it has the 413: guard has read everything, so mitmproxy's connection task is
    # cancelled (by the refusal's close) while it waits to read, and mitmproxy closes the
    # socket itself. That close must read and drop the rest too: closed with the rest
    # unread, the socket is reset (this ordering reset the upload above, now and then).
    chunk = b"%x\r\n%s\r\n" % (65536, b"d" * 65536)
    with connect(lab.port, "127.0.0.23") as s:
        s.sendall(b"POST http://sim.test/echo HTTP/1.1\r\nHost: sim.test\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 16 + b"1\r\nd")
        status, _, body = read_answer(s)  # 1 MiB and a byte: over the limit
        assert status == 413 and json.loads(body)["error"]["rule"] == "guard.limit.body-size"
        s.sendall(b"\r\n" + chunk * 512 + b"0\r\n\r\n")  # 32 MiB: more than buffers hold
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""  # guard's end of the answer, not a reset
    hello(lab.port, "127.0.0.24")


def test_a_body_under_the_limit_and_a_download_over_it_pass(
        lab: RunningGuard, upstream: Upstream) -> None:
    status, _, body = request(lab.port, "POST", "http://sim.test/echo",
                              body=b"c" * (MiB - 10), source="127.0.0.15")
    assert status == 200 and json.loads(body) == {"size": MiB - 10}
    status, _, body = request(lab.port, "GET", f"http://up.test:{upstream.port}/big",
                              source="127.0.0.15")
    assert status == 200 and len(body) == 3 * MiB  # responses are not limited


# bodies that unpack too far


def _bomb(coding: str, size: int) -> bytes:
    data = b"\0" * size
    if coding == "gzip":
        return gzip.compress(data, 9)
    if coding == "deflate":
        return zlib.compress(data, 9)
    if coding == "br":
        return bytes(brotli.compress(data, quality=5))
    return bytes(zstandard.ZstdCompressor(level=10).compress(data))


CODINGS = ["gzip", "deflate", "br", "zstd"]


@pytest.mark.parametrize("coding", CODINGS)
def test_a_compression_bomb_is_refused_by_its_unpacked_size(
        lab: RunningGuard, coding: str) -> None:
    bomb = _bomb(coding, 150 * MiB)
    assert len(bomb) < MiB  # under the body limit: only unpacking shows what it is
    status, headers, body = request(lab.port, "POST", "http://sim.test/echo",
                                    f"Content-Encoding: {coding}", body=bomb,
                                    source="127.0.0.16")
    assert status == 413, body
    rule = json.loads(body)["error"]["rule"]
    # gzip and deflate pack 150 MiB of zeros into ~150 KiB: 50 times that is over 4 MiB,
    # so the unpacked size stops them; br and zstd pack it into a few KiB: the ratio does
    assert rule == ("guard.limit.decoded-size" if coding in ("gzip", "deflate")
                    else "guard.limit.decode-ratio")
    [event] = [e for e in events(audit_of(lab), rule) if e["sandbox"] == "127.0.0.16"
               and ["content-encoding", coding] in e["request"]["headers"]]
    assert event["action"] == "block" and event["status"] == 413
    hello(lab.port, "127.0.0.17")


@pytest.mark.parametrize("coding", CODINGS)
def test_a_body_that_unpacks_past_the_ratio_is_refused(
        lab: RunningGuard, coding: str) -> None:
    bomb = _bomb(coding, 3 * MiB)  # under the unpacked limit, far over 50:1
    status, _, body = request(lab.port, "POST", "http://sim.test/echo",
                              f"Content-Encoding: {coding}", body=bomb, source="127.0.0.18")
    assert status == 413, body
    assert json.loads(body)["error"]["rule"] == "guard.limit.decode-ratio"


@pytest.mark.parametrize("coding", [*CODINGS, "gzip, br"])
def test_an_ordinary_packed_body_is_unpacked_for_the_rules(
        lab: RunningGuard, coding: str) -> None:
    text = b'{"n": 1}' * 1000
    packed = gzip.compress(text) if coding.startswith("gzip") else text
    if coding != "gzip":
        packed = {"deflate": zlib.compress, "zstd": zstandard.ZstdCompressor().compress,
                  "br": brotli.compress, "gzip, br": brotli.compress}[coding](packed)
    status, _, body = request(lab.port, "POST", "http://sim.test/echo",
                              f"Content-Encoding: {coding}", body=packed, source="127.0.0.19")
    assert status == 200 and json.loads(body) == {"size": len(text)}


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_150_mib_upload_does_not_grow_guard_by_its_size(tmp_path: Path,
                                                          confdir: Path) -> None:
    """guard as its own process, measured: neither a declared nor a chunked 150 MiB body
    raises its peak memory by anything like 150 MiB (it was 450 MiB)."""
    from tests.guard_process import GuardProcess

    rules = tmp_path / "lab.yaml"
    rules.write_text(textwrap.dedent(RULES.format(port=9)))
    g = GuardProcess(confdir, tmp_path / "audit.jsonl", "-q", "--state", "off", "--rules",
                     str(rules), "--max-body-size", "8MiB")
    try:
        hello(g.port, "127.0.0.20")
        before = _peak_rss(g.proc.pid)
        piece = b"d" * MiB
        with g.session() as http:  # requests sends the whole body before it reads
            declared = http.post("http://sim.test/echo", data=piece * 150)
            chunked = http.post("http://sim.test/echo", data=(piece for _ in range(150)))
        for answer in (declared, chunked):
            assert answer.status_code == 413
            assert answer.json()["error"]["rule"] == "guard.limit.body-size"
        hello(g.port, "127.0.0.22")
        grown = _peak_rss(g.proc.pid) - before
        assert grown < 64 * MiB, f"guard's peak memory grew by {grown // MiB} MiB"
    finally:
        g.stop()


# connections per client and half-sent requests


@pytest.fixture
def tight(tmp_path: Path, confdir: Path) -> Iterator[RunningGuard]:
    """A guard allowing 5 connections per client address and 3 s for a request head."""
    rules = tmp_path / "lab.yaml"
    rules.write_text(textwrap.dedent(RULES.format(port=9)))
    from guard.options import Options

    cfg = Options(rules=[str(rules)], listen_port=0, confdir=confdir, quiet=True,
                  audit=tmp_path / "audit.jsonl", state=None, max_client_connections=5,
                  header_timeout=3.0)
    g = RunningGuard(cfg).__enter__()
    yield g
    g.stop()


def closed_by_guard(s: socket.socket) -> bytes:
    """Everything guard writes until it closes the connection (the test's socket timeout
    is a safety net, not a measure: the assertion is that guard closes it)."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def test_one_connection_over_the_limit_is_refused_and_others_are_served(
        tight: RunningGuard) -> None:
    held = [connect(tight.port, "127.0.0.31") for _ in range(5)]
    try:
        hello(tight.port, "127.0.0.1")  # baseline: another address, before and after
        with connect(tight.port, "127.0.0.31") as extra:
            answer = closed_by_guard(extra)
        assert answer.startswith(b"HTTP/1.1 429 ")
        error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
        assert error["rule"] == "guard.limit.connections"
        assert "--max-client-connections 5" in error["message"]
        hello(tight.port, "127.0.0.32")
        [event] = events(audit_of(tight), "guard.limit.connections")
        assert event["sandbox"] == "127.0.0.31" and event["action"] == "block"
    finally:
        for s in held:
            s.close()
    # the held connections are gone: their address is served again
    for _ in range(50):
        if tight.guard.limits.open.get("127.0.0.31", 0) == 0:
            break
        with connect(tight.port, "127.0.0.1") as s:  # (something to wait on that is not
            s.sendall(b"GET http://sim.test/hello HTTP/1.1\r\nHost: sim.test\r\n"
                      b"Connection: close\r\n\r\n")  # a clock: one round trip)
            read_answer(s)
    hello(tight.port, "127.0.0.31")


def test_connections_closed_without_a_byte_stop_counting_against_their_address(
        tight: RunningGuard) -> None:
    """More connections than the limit, one after the other, each closed before it sent a
    byte: the address is still served. (Handed from the fast path to mitmproxy at their
    end of stream, such connections crashed mitmproxy's handler, which then skipped its
    client_disconnected hook: each counted for ever, and after 5 the address got 429s.)"""
    for _ in range(8):
        with connect(tight.port, "127.0.0.37") as s:
            s.shutdown(socket.SHUT_WR)
            assert closed_by_guard(s) == b""
    hello(tight.port, "127.0.0.37")


def test_a_connection_counts_once_whichever_path_serves_it(tight: RunningGuard) -> None:
    """Keep-alive plain-HTTP connections (the fast path reads their first bytes, then
    hands them to mitmproxy) count exactly once each while they are open, and not at all
    once closed."""
    held = [connect(tight.port, "127.0.0.38") for _ in range(5)]
    try:
        for s in held:
            s.sendall(b"GET http://sim.test/hello HTTP/1.1\r\nHost: sim.test\r\n\r\n")
            status, _, _ = read_answer(s)
            assert status == 200
        assert tight.guard.limits.open["127.0.0.38"] == 5
        with connect(tight.port, "127.0.0.38") as extra:
            assert closed_by_guard(extra).startswith(b"HTTP/1.1 429 ")
    finally:
        for s in held:
            s.close()
    for _ in range(50):  # (something to wait on that is not a clock: one round trip)
        if tight.guard.limits.open.get("127.0.0.38", 0) == 0:
            break
        hello(tight.port, "127.0.0.39")
    assert tight.guard.limits.open.get("127.0.0.38", 0) == 0
    hello(tight.port, "127.0.0.38")


def test_a_half_sent_request_is_answered_408_and_closed(tight: RunningGuard) -> None:
    with connect(tight.port, "127.0.0.33") as slow:
        slow.sendall(b"GET http://sim.test/hello HTTP/1.1\r\nHost: sim")
        hello(tight.port, "127.0.0.34")  # served while the half-sent request is open
        answer = closed_by_guard(slow)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["rule"] == \
        "guard.limit.header-timeout"
    [event] = events(audit_of(tight), "guard.limit.header-timeout")
    assert event["sandbox"] == "127.0.0.33"


def test_a_silent_connection_is_closed_and_a_keep_alive_one_after_its_answer(
        tight: RunningGuard) -> None:
    with connect(tight.port, "127.0.0.35") as silent:
        assert closed_by_guard(silent) == b""  # nothing to answer: closed, audited
    with connect(tight.port, "127.0.0.36") as kept:
        kept.sendall(b"GET http://sim.test/hello HTTP/1.1\r\nHost: sim.test\r\n\r\n")
        status, _, _ = read_answer(kept)
        assert status == 200
        assert closed_by_guard(kept) == b""  # idle after its answer: closed quietly
    sandboxes = [e["sandbox"] for e in events(audit_of(tight), "guard.limit.header-timeout")]
    assert sandboxes == ["127.0.0.35"]


def test_1500_half_sent_requests_do_not_stop_another_sandbox(
        tmp_path: Path, confdir: Path) -> None:
    """Slowloris: 1,500 connections each with half a request head. Another sandbox is
    served while they are all still open (checked after its answers). (That guard closes
    them is the test above; here the timeout is long, so that no clock decides.)"""
    rules = tmp_path / "lab.yaml"
    rules.write_text(textwrap.dedent(RULES.format(port=9)))
    from guard.options import Options

    cfg = Options(rules=[str(rules)], listen_port=0, confdir=confdir, quiet=True,
                  audit=tmp_path / "audit.jsonl", state=None, max_client_connections=2000,
                  header_timeout=600.0)
    with RunningGuard(cfg) as g:
        hello(g.port, "127.0.0.41")  # baseline
        slow = []
        try:
            for i in range(1500):
                s = connect(g.port, f"127.0.1.{i % 200 + 1}")
                s.sendall(b"POST http://sim.test/echo HTTP/1.1\r\nHost: sim.test\r\nX-A: ")
                slow.append(s)
            for _ in range(3):
                hello(g.port, "127.0.0.42")
            assert sum(g.guard.limits.open.values()) >= 1500  # all still held by guard
        finally:
            for s in slow:
                s.close()
        hello(g.port, "127.0.0.43")


# the options


def test_limits_are_options_in_every_source(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    import argparse

    from guard.errors import OptionsError
    from guard.options import add_flags, from_args, load

    monkeypatch.setenv("GUARD_MAX_BODY_SIZE", "1MiB")
    config = tmp_path / "guard.yaml"
    config.write_text("max_decode_ratio: 20\nidle-timeout: 2m\n")
    parser = argparse.ArgumentParser()
    add_flags(parser)
    opts = from_args(parser.parse_args(["--header-timeout", "5s", "--config", str(config),
                                        "--max-client-connections", "9"]))
    assert (opts.max_body_size, opts.max_decode_ratio, opts.idle_timeout,
            opts.header_timeout, opts.max_client_connections) == (MiB, 20, 120.0, 5.0, 9)
    assert load().max_decoded_size == 64 * MiB  # the default
    for bad in ({"header_timeout": "soon"}, {"max_body_size": "0"},
                {"max_client_connections": 0}):
        with pytest.raises(OptionsError):
            load(bad)


# worlds


STRIPE = ("Authorization: Bearer sk_test_limits",
          "Content-Type: application/x-www-form-urlencoded")


def create_customer(port: int, source: str, **fields: str) -> tuple[int, dict[str, Any]]:
    from urllib.parse import urlencode

    status, _, body = request(port, "POST", "http://api.stripe.com/v1/customers", *STRIPE,
                              body=urlencode(fields).encode(), source=source)
    return status, json.loads(body)


def test_a_full_world_refuses_to_grow_in_the_providers_shape(guard_proxy: Any) -> None:
    g = guard_proxy(max_world_objects=6)  # three customers (each with its event)
    ids = [create_customer(g.port, "127.0.0.51", email=f"{i}@x.test")[1]["id"]
           for i in range(3)]
    status, answer = create_customer(g.port, "127.0.0.51", email="4@x.test")
    assert status == 400
    error = answer["error"]  # Stripe's own error shape: the SDKs raise InvalidRequestError
    assert error["type"] == "invalid_request_error" and error["code"] == "resource_limit"
    assert "guard.limit.world" in error["message"] and "--max-world-objects 6" in \
        error["message"]
    assert g.worlds.world("127.0.0.51").count("stripe.customers") == 3  # nothing half-made
    assert create_customer(g.port, "127.0.0.52", email="a@x.test")[0] == 200  # another
    [event] = events(audit_of(g), "guard.limit.world")
    assert event["sandbox"] == "127.0.0.51" and event["action"] == "block"
    # a full world can still be read and cleaned up
    status, _, body = request(g.port, "GET", "http://api.stripe.com/v1/customers?limit=1",
                              *STRIPE, source="127.0.0.51")
    assert status == 200 and len(json.loads(body)["data"]) == 1
    status, _, _ = request(g.port, "DELETE", f"http://api.stripe.com/v1/customers/{ids[0]}",
                           *STRIPE, source="127.0.0.51")
    assert status == 200  # (a deletion may go a tenth over: it leaves an event)
    assert g.worlds.world("127.0.0.51").count("stripe.customers") == 3  # one a tombstone


def test_a_world_full_of_bytes_refuses_a_large_object(guard_proxy: Any) -> None:
    g = guard_proxy(max_world_bytes=20_000)
    big = "x" * 400
    made = 0
    while True:
        status, answer = create_customer(
            g.port, "127.0.0.53", **{f"metadata[k{i}]": big for i in range(20)})
        if status != 200:
            break
        made += 1
    assert made >= 1 and status == 400
    assert "--max-world-bytes 20000" in answer["error"]["message"]
    assert sum(g.worlds.info("127.0.0.53").bytes.values()) <= 20_000
    assert create_customer(g.port, "127.0.0.54", email="b@x.test")[0] == 200


def test_a_limit_1_list_over_a_big_world_reads_one_page_not_the_world(
        guard_proxy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """50 MiB of customers in one sandbox: ``GET /v1/customers?limit=1`` (and the next
    page) reads a page of objects, not the collection, so it stalls nobody. Counted, not
    timed: every object the store hands out is counted."""
    from guard.world.memory import MemoryWorld

    g = guard_proxy(state=None, store=None)
    big = g.worlds.world("127.0.0.61")
    blob = "y" * 10_000
    with big.transaction():
        for i in range(5000):
            big.put("stripe.customers", {"id": f"cus_{i:08d}", "object": "customer",
                                         "created": 1_700_000_000 + i, "livemode": False,
                                         "metadata": {}, "description": blob})
    read = {"n": 0}
    scan = MemoryWorld._scan_raw

    def counted(self: MemoryWorld, *args: Any, **kwargs: Any) -> Iterator[tuple[str, str]]:
        for item in scan(self, *args, **kwargs):
            read["n"] += 1
            yield item

    monkeypatch.setattr(MemoryWorld, "_scan_raw", counted)
    status, _, body = request(g.port, "GET", "http://api.stripe.com/v1/customers?limit=1",
                              *STRIPE, source="127.0.0.61")
    page = json.loads(body)
    assert status == 200 and len(page["data"]) == 1 and page["has_more"] is True
    first = read["n"]
    status, _, body = request(
        g.port, "GET", f"http://api.stripe.com/v1/customers?limit=1&starting_after="
        f"{page['data'][0]['id']}", *STRIPE, source="127.0.0.61")
    assert status == 200 and len(json.loads(body)["data"]) == 1
    assert first <= 5 and read["n"] - first <= 5, read  # a page (and has_more), of 5,000
    assert create_customer(g.port, "127.0.0.62", email="c@x.test")[0] == 200


def test_an_idle_tunnel_is_closed_by_the_idle_timeout(tmp_path: Path, confdir: Path) -> None:
    rules = tmp_path / "lab.yaml"
    rules.write_text(textwrap.dedent(RULES.format(port=9)))
    from guard.options import Options

    cfg = Options(rules=[str(rules)], listen_port=0, confdir=confdir, quiet=True,
                  audit=tmp_path / "audit.jsonl", state=None, idle_timeout=1.0,
                  header_timeout=600.0)  # only the idle timeout can close it
    with RunningGuard(cfg) as g:
        assert g.master is not None and g.master.options.tcp_timeout == 1
        with connect(g.port, "127.0.0.71") as tunnel:
            tunnel.sendall(b"CONNECT sim.test:443 HTTP/1.1\r\nHost: sim.test:443\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += tunnel.recv(4096)
            assert head.startswith(b"HTTP/1.1 200")
            hello(g.port, "127.0.0.72")  # served while the tunnel idles
            assert closed_by_guard(tunnel) == b""


def test_an_idle_world_is_evicted_and_read_back_from_its_journal(
        guard_proxy: Any, tmp_path: Path) -> None:
    g = guard_proxy(state=tmp_path / "state", world_idle_evict=0.01)
    status, made = create_customer(g.port, "127.0.0.81", email="kept@x.test")
    assert status == 200
    for _ in range(2000):  # round trips of another sandbox until the evictor has run
        if "127.0.0.81" in g.guard.limits.evicted:
            break
        assert request(g.port, "GET", "http://api.stripe.com/v1/customers", *STRIPE,
                       source="127.0.0.82")[0] == 200
    assert "127.0.0.81" in g.guard.limits.evicted
    status, _, body = request(g.port, "GET",
                              f"http://api.stripe.com/v1/customers/{made['id']}", *STRIPE,
                              source="127.0.0.81")
    assert status == 200 and json.loads(body)["email"] == "kept@x.test"  # read back


def test_without_state_an_evicted_world_is_gone(guard_proxy: Any,
                                                pytestconfig: pytest.Config) -> None:
    if pytestconfig.getoption("--store") == "redis":
        pytest.skip("--world-idle-evict drops worlds from the in-process store only: a "
                    "Redis store has no idle eviction (its worlds stay in Redis)")
    g = guard_proxy(state=None, world_idle_evict=0.01)
    status, made = create_customer(g.port, "127.0.0.83", email="gone@x.test")
    assert status == 200
    for _ in range(2000):
        if "127.0.0.83" in g.guard.limits.evicted:
            break
        assert request(g.port, "GET", "http://api.stripe.com/v1/customers", *STRIPE,
                       source="127.0.0.84")[0] == 200
    assert "127.0.0.83" in g.guard.limits.evicted
    status, _, _ = request(g.port, "GET", f"http://api.stripe.com/v1/customers/{made['id']}",
                           *STRIPE, source="127.0.0.83")
    assert status == 404
