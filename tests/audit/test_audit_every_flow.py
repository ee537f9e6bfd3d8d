"""Every flow is audited, whatever its bytes, through a real guard proxy: the examples
of issue 11 section 1 (a header byte 0xFF, ``%FF`` in a query string, a deeply nested
JSON body) on simulated, blocked and allowed hosts each give one event and a log that
verifies; an event that cannot be built in full is still chained as a minimal one; and
an allowed request's event is in the log before the upstream sees the request."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from guard.audit import reader
from guard.audit.event import EventBuilder
from guard.audit.verify import verify
from tests.audit.audit_helpers import RULES
from tests.rawhttp import exchange


def request(target: str, *, headers: bytes = b"", body: bytes = b"",
            ctype: bytes = b"application/json") -> bytes:
    host = target.split("/")[2].encode()
    return (b"POST " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
            + headers + b"Content-Type: " + ctype + b"\r\nContent-Length: %d\r\n\r\n"
            % len(body) + body)


def events(log: Path) -> list[dict]:
    return list(reader.events([log]))


class SeesTheLog:
    """A loopback upstream that, for each request, looks whether the audit log already
    holds its request event."""

    def __init__(self, log: Path) -> None:
        self.seen: list[bool] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                lines = [json.loads(x) for x in log.read_text().splitlines() if x]
                outer.seen.append(any(e.get("kind") == "request" and "/allowed/" in e["url"]
                                      for e in lines))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("target", ["http://echo.test/x", "http://evil.test/x",
                                    "http://unknown.example.org/x"],
                         ids=["simulated", "blocked", "default-deny"])
@pytest.mark.parametrize("case", [
    {"headers": b"X-Bad: \xff\xfe\r\n"},
    {"query": "?q=%FF%FE&r=%"},
    {"body": DEEP},
    {"body": b'{"a": ' * 5000 + b"1" + b"}" * 5000},
    {"body": b"\xff\xfe not utf-8 \x00\x01", "ctype": b"text/plain"},
], ids=["header-0xff", "query-%FF", "deep-list", "deep-object", "binary-body"])
def test_request_content_never_costs_a_flow_its_event(guard_proxy, tmp_path, target, case):
    g = guard_proxy(RULES)
    answer = exchange(g.port, request(target + case.get("query", ""),
                                      headers=case.get("headers", b""),
                                      body=case.get("body", b"{}"),
                                      ctype=case.get("ctype", b"application/json")))
    assert answer.startswith(b"HTTP/1.1 ")
    [event] = events(tmp_path / "audit.jsonl")
    assert event["host"] == target.split("/")[2]
    assert g.upstream_attempts == []
    assert verify([tmp_path / "audit.jsonl"]).ok


def test_a_header_byte_0xff_is_kept_exactly(guard_proxy, tmp_path):
    g = guard_proxy(RULES)
    exchange(g.port, request("http://echo.test/x", headers=b"X-Bad: a\xffb\r\n", body=b"{}"))
    [event] = events(tmp_path / "audit.jsonl")
    assert ["x-bad", "a\udcffb"] in event["request"]["headers"]


def test_an_allowed_request_with_bad_bytes_is_written_before_it_is_forwarded(
        guard_proxy, tmp_path):
    log = tmp_path / "audit.jsonl"
    up = SeesTheLog(log)
    try:
        g = guard_proxy(RULES)
        answer = exchange(g.port, f"GET http://127.0.0.1:{up.port}/allowed/x?q=%FF HTTP/1.1"
                          f"\r\nHost: 127.0.0.1:{up.port}\r\nX-Bad: \xff\r\n\r\n"
                          .encode("latin-1"))
    finally:
        up.close()
    assert answer.split(b" ", 2)[1] == b"200"
    assert up.seen == [True]  # the request event was in the log when it arrived
    raw = [json.loads(x) for x in log.read_text().splitlines()]
    kinds = [(e["kind"], e.get("request_seq")) for e in raw]
    assert kinds == [("request", None), ("flow", raw[0]["seq"])]
    assert ["x-bad", "\udcff"] in raw[0]["request"]["headers"]
    assert verify([log]).ok


def test_bytes_that_are_not_utf8_reach_the_live_feed_too(guard_proxy, tmp_path):
    g = guard_proxy(RULES)
    exchange(g.port, request("http://echo.test/x", headers=b"X-Bad: \xff\r\n", body=b"{}"))
    feed = g.worlds.events("127.0.0.1")
    assert len(feed) == 1 and ["x-bad", "\udcff"] in feed[0]["request"]["headers"]


def test_an_event_that_cannot_be_built_is_chained_as_a_minimal_one(
        guard_proxy, tmp_path, monkeypatch):
    def broken(self, record):  # whatever in the request defeats the builder
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(EventBuilder, "build", broken)
    g = guard_proxy(RULES)
    answer = exchange(g.port, request("http://echo.test/x", body=b'{"to": "a@b.c"}'))
    assert answer.split(b" ", 2)[1] == b"200"  # the answer still goes out: it is on record
    [event] = events(tmp_path / "audit.jsonl")
    assert event["minimal"] is True and event["rule"] == "audit-test.echo"
    assert "RecursionError" in event["error"]
    assert verify([tmp_path / "audit.jsonl"]).ok
