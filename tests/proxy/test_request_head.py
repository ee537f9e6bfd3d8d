"""Request heads through a real guard proxy: a URL or headers over the limits get guard's
JSON 414/431 naming the rule (whatever the host, whether the head ended or is still
arriving), a chunked body with trailers or broken chunking gets a 400, and each of them
is one audit event in a log that verifies. Nothing reaches an upstream."""

from __future__ import annotations

import json
import socket
import textwrap
import time
from pathlib import Path

import pytest
import requests

from guard.audit import reader
from guard.audit.verify import verify
from guard.head_limits import (
    HEADER_RULE_ID,
    TRAILERS_RULE_ID,
    UNREADABLE_RULE_ID,
    URL_RULE_ID,
    HeadLimits,
)
from tests.upstream import Upstream

MIB = 1024 * 1024


def session(g) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies = g.proxies
    s.verify = g.ca
    return s


def exchange(g, data: bytes, *, timeout: float = 30) -> bytes:
    """Send raw bytes to the proxy and read its answer until it closes (or the answer's
    length is in)."""
    with socket.create_connection(("127.0.0.1", g.port), timeout=timeout) as c:
        try:
            c.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # guard answered and stopped reading before all was sent
        return read_answer(c)


def read_answer(c: socket.socket) -> bytes:
    got = b""
    while True:
        try:
            chunk = c.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    return got


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def flow_events(path: Path) -> list[dict]:
    return list(reader.events([path]))


def events_soon(path: Path) -> list[dict]:
    """The log's events once there are any: a flow that ends in an error is written when
    the proxy sees the error, which may be after the client has its answer."""
    events: list[dict] = []
    for _ in range(600):
        events = flow_events(path)
        if events:
            break
        time.sleep(0.05)
    return events


def loopback_rules(tmp_path: Path) -> Path:
    path = tmp_path / "loop.yaml"
    path.write_text(textwrap.dedent("""
        pack: loop
        hosts: ["127.0.0.1"]
        rules:
          - id: loop.allowed
            match: {path: /allowed/**}
            action: allow
            allow_private: true
            ports: ["1024-65535"]
    """))
    return path


# URL and header size: a complete head over a limit

@pytest.mark.parametrize("host", ["api.stripe.com", "unknown.example.org"])
def test_a_one_mebibyte_path_gets_guards_414_whatever_the_host(guard_proxy, tmp_path, host):
    g = guard_proxy()
    r = session(g).get(f"https://{host}/v1/customers/" + "a" * MIB)
    assert r.status_code == 414
    error = r.json()["error"]
    assert error["type"] == "guard_blocked" and error["rule"] == URL_RULE_ID
    assert "--max-url-bytes" in error["reason"]
    assert g.upstream_attempts == []
    [event] = flow_events(tmp_path / "audit.jsonl")
    assert event["rule"] == URL_RULE_ID and event["action"] == "block"
    assert event["status"] == 414 and event["host"] == host
    assert len(event["url"]) < 4096  # a bounded copy, not the mebibyte
    assert verify([tmp_path / "audit.jsonl"]).ok


@pytest.mark.parametrize("headers", [
    {"X-Key": "a" * (2 * MIB)},                                       # one huge header
    {f"X-A{i}": "a" * 60000 for i in range(35)},                      # many large ones
    {f"X-{i}": "key=" + "b" * 100 for i in range(20000)},            # very many small ones
], ids=["one-2MiB", "35x60KB", "20000-small"])
def test_two_mebibytes_of_headers_get_guards_431(guard_proxy, tmp_path, headers):
    g = guard_proxy()
    r = session(g).get("https://api.stripe.com/v1/customers", headers=headers)
    assert r.status_code == 431
    assert r.json()["error"]["rule"] == HEADER_RULE_ID
    assert r.headers["X-Guard-Rule"] == HEADER_RULE_ID
    [event] = flow_events(tmp_path / "audit.jsonl")
    assert event["rule"] == HEADER_RULE_ID and event["status"] == 431
    kept = event["request"]["headers"]
    assert len(json.dumps(kept)) < 128 * 1024  # bounded, whatever was sent
    assert verify([tmp_path / "audit.jsonl"]).ok


def test_a_plain_http_head_over_the_limit_is_refused_too(guard_proxy, tmp_path):
    g = guard_proxy()
    answer = exchange(g, b"GET http://api.stripe.com/v1/customers/" + b"a" * MIB
                      + b" HTTP/1.1\r\nHost: api.stripe.com\r\n\r\n")
    status, body = status_and_json(answer)
    assert status == 414 and body["error"]["rule"] == URL_RULE_ID
    answer = exchange(g, b"GET http://api.stripe.com/v1/customers HTTP/1.1\r\n"
                      b"Host: api.stripe.com\r\n"
                      + b"".join(b"X-A%d: %s\r\n" % (i, b"a" * 60000) for i in range(35))
                      + b"\r\n")
    status, body = status_and_json(answer)
    assert status == 431 and body["error"]["rule"] == HEADER_RULE_ID
    events = flow_events(tmp_path / "audit.jsonl")
    assert [e["rule"] for e in events] == [URL_RULE_ID, HEADER_RULE_ID]
    assert {e["host"] for e in events} == {"api.stripe.com"}
    assert verify([tmp_path / "audit.jsonl"]).ok


def test_limits_are_configurable_and_a_head_within_them_is_served(guard_proxy, tmp_path):
    g = guard_proxy(max_header_bytes=4096, max_url_bytes=1024)
    s = session(g)
    assert s.get("https://unknown.example.org/" + "a" * 900).status_code == 403
    assert s.get("https://unknown.example.org/" + "a" * 1100).status_code == 414
    assert s.get("https://unknown.example.org/", headers={"X-A": "a" * 3000}).status_code == 403
    r = s.get("https://unknown.example.org/", headers={"X-A": "a" * 5000})
    assert r.status_code == 431 and "4096 bytes" in r.json()["error"]["message"]
    rules = [e["rule"] for e in flow_events(tmp_path / "audit.jsonl")]
    assert rules == ["guard.default-deny", URL_RULE_ID, "guard.default-deny", HEADER_RULE_ID]


def test_the_refused_request_is_audited_in_its_sandbox_with_secrets_redacted(
        guard_proxy, tmp_path):
    g = guard_proxy(max_header_bytes=4096)
    key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    r = session(g).get("https://api.stripe.com/v1/customers",
                       headers={"Authorization": f"Bearer {key}", "X-Pad": "p" * 5000})
    assert r.status_code == 431
    [event] = flow_events(tmp_path / "audit.jsonl")
    assert event["sandbox"] == "127.0.0.1"
    text = json.dumps(event)
    assert key not in text and "sk_live_[REDACTED:" in text
    assert ["x-pad", "[5000 bytes, not kept]"] in event["request"]["headers"]


# a head that is still arriving

def test_a_head_that_never_ends_is_refused_without_waiting_for_its_end(guard_proxy, tmp_path):
    g = guard_proxy()
    limit = HeadLimits().head_bytes
    with socket.create_connection(("127.0.0.1", g.port), timeout=30) as c:
        c.sendall(b"GET http://api.stripe.com/v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n")
        sent = 0
        while sent <= limit + 65536:  # past the limit, and the head has not ended
            c.sendall(b"X-Filler: " + b"f" * 990 + b"\r\n")
            sent += 1002
        c.shutdown(socket.SHUT_WR)
        status, body = status_and_json(read_answer(c))
    assert status == 431 and body["error"]["rule"] == HEADER_RULE_ID
    [event] = flow_events(tmp_path / "audit.jsonl")
    assert event["rule"] == HEADER_RULE_ID and event["host"] == "api.stripe.com"
    assert event["url"] == "http://api.stripe.com/v1/customers"
    assert event["sandbox"] == "127.0.0.1"
    assert verify([tmp_path / "audit.jsonl"]).ok


def test_a_request_line_that_never_ends_gets_414(guard_proxy, tmp_path):
    g = guard_proxy()
    with socket.create_connection(("127.0.0.1", g.port), timeout=30) as c:
        c.sendall(b"GET http://api.stripe.com/")
        for _ in range(200):
            c.sendall(b"a" * 1024)
        status, body = status_and_json(read_answer(c))
    assert status == 414 and body["error"]["rule"] == URL_RULE_ID
    [event] = flow_events(tmp_path / "audit.jsonl")
    assert event["rule"] == URL_RULE_ID and event["method"] == "GET"
    assert event["host"] == "api.stripe.com"


def test_a_huge_head_inside_a_tls_tunnel_is_refused_and_named_by_its_tunnel(
        guard_proxy, tmp_path):
    import ssl

    g = guard_proxy()
    with socket.create_connection(("127.0.0.1", g.port), timeout=30) as raw:
        raw.sendall(b"CONNECT api.stripe.com:443 HTTP/1.1\r\nHost: api.stripe.com:443\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        tls = ssl.create_default_context(cafile=g.ca).wrap_socket(
            raw, server_hostname="api.stripe.com")
        tls.sendall(b"GET /v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n")
        try:
            for _ in range(300):
                tls.sendall(b"X-Filler: " + b"f" * 990 + b"\r\n")
        except (ssl.SSLError, OSError):
            pass
        answer = b""
        try:
            while chunk := tls.recv(65536):
                answer += chunk
        except (ssl.SSLError, OSError):
            pass
    status, body = status_and_json(answer)
    assert status == 431 and body["error"]["rule"] == HEADER_RULE_ID
    [event] = flow_events(tmp_path / "audit.jsonl")
    assert event["host"] == "api.stripe.com" and event["rule"] == HEADER_RULE_ID


def test_an_oversize_connect_is_refused_and_audited(guard_proxy, tmp_path):
    g = guard_proxy(max_header_bytes=4096)
    answer = exchange(g, b"CONNECT api.stripe.com:443 HTTP/1.1\r\nHost: api.stripe.com:443\r\n"
                      b"X-Pad: " + b"p" * 8000 + b"\r\n\r\n")
    status, body = status_and_json(answer)
    assert status == 431 and body["error"]["rule"] == HEADER_RULE_ID
    [event] = flow_events(tmp_path / "audit.jsonl")
    assert event["rule"] == HEADER_RULE_ID and event["method"] == "CONNECT"
    assert g.upstream_attempts == []


# bodies guard cannot take

CHUNKED_WITH_TRAILERS = (b"Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                         b"5\r\nemail\r\n0\r\nX-Checksum: 1234\r\n\r\n")


@pytest.mark.parametrize("target", ["http://api.stripe.com/v1/customers",
                                    "http://unknown.example.org/x"])
def test_a_chunked_request_with_trailers_gets_a_400_and_an_event(guard_proxy, tmp_path, target):
    g = guard_proxy()
    host = target.split("/")[2]
    answer = exchange(g, f"POST {target} HTTP/1.1\r\nHost: {host}\r\n".encode()
                      + CHUNKED_WITH_TRAILERS)
    status, body = status_and_json(answer)
    assert status == 400 and body["error"]["rule"] == TRAILERS_RULE_ID
    [event] = flow_events(tmp_path / "audit.jsonl")
    assert event["rule"] == TRAILERS_RULE_ID and event["action"] == "block"
    assert event["request"]["body"]["text"] == "email"
    assert verify([tmp_path / "audit.jsonl"]).ok


def test_trailers_on_an_allowed_host_never_reach_it(guard_proxy, tmp_path):
    up = Upstream()
    try:
        g = guard_proxy(loopback_rules(tmp_path))
        answer = exchange(g, f"POST http://127.0.0.1:{up.port}/allowed/x HTTP/1.1\r\n"
                          f"Host: 127.0.0.1:{up.port}\r\n".encode() + CHUNKED_WITH_TRAILERS)
        assert status_and_json(answer)[0] == 400
        assert up.connections == 0 and g.upstream_attempts == []
        # the same request without trailers goes through: the rule is right
        answer = exchange(g, f"POST http://127.0.0.1:{up.port}/allowed/x HTTP/1.1\r\n"
                          f"Host: 127.0.0.1:{up.port}\r\nContent-Length: 5\r\n\r\nemail".encode())
        assert answer.split(b" ", 2)[1] == b"200"
    finally:
        up.close()


def test_broken_chunked_encoding_gets_a_400_and_an_event(guard_proxy, tmp_path):
    g = guard_proxy()
    answer = exchange(g, b"POST http://api.stripe.com/v1/customers HTTP/1.1\r\n"
                      b"Host: api.stripe.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\nemail\r\n0\r\n\r\n")
    status, body = status_and_json(answer)
    assert status == 400 and body["error"]["rule"] == UNREADABLE_RULE_ID
    [event] = events_soon(tmp_path / "audit.jsonl")
    assert event["rule"] == UNREADABLE_RULE_ID and event["action"] == "block"
    assert "protocol error" in event["reason"]


def test_a_client_that_leaves_mid_body_is_still_audited(guard_proxy, tmp_path):
    g = guard_proxy()
    with socket.create_connection(("127.0.0.1", g.port), timeout=30) as c:
        c.sendall(b"POST http://api.stripe.com/v1/customers HTTP/1.1\r\n"
                  b"Host: api.stripe.com\r\nContent-Length: 100\r\n\r\nemail=")
    [event] = events_soon(tmp_path / "audit.jsonl")
    assert event["rule"] == UNREADABLE_RULE_ID and event["host"] == "api.stripe.com"
    assert "closed connection" in event["reason"]


def test_the_limits_read_sizes_as_every_option_does():
    from guard.options import Options

    opts = Options(max_header_bytes="32KiB", max_url_bytes="2k")  # type: ignore[arg-type]
    assert (opts.max_header_bytes, opts.max_url_bytes) == (32768, 2048)
    with pytest.raises(ValueError):
        Options(max_url_bytes=0)


@pytest.mark.parametrize("head", [
    b"garbage\r\n\r\n",                                                        # no request line
    b"GET http://api.stripe.com/v1/customers HTTP/1.1\r\nHost: api.stripe.com\r\n"
    b"Content-Length: abc\r\n\r\n",                                            # a bad length
    b"GET http://api.stripe.com/v1/customers HTTP/1.1\r\nNo colon here\r\n\r\n",  # a bad header
], ids=["request-line", "content-length", "header"])
def test_a_head_guard_cannot_parse_gets_its_json_400_and_an_event(guard_proxy, tmp_path, head):
    g = guard_proxy()
    status, body = status_and_json(exchange(g, head))
    assert status == 400 and body["error"]["rule"] == UNREADABLE_RULE_ID
    [event] = events_soon(tmp_path / "audit.jsonl")
    assert event["rule"] == UNREADABLE_RULE_ID and event["action"] == "block"
    assert event["sandbox"] == "127.0.0.1"
    assert verify([tmp_path / "audit.jsonl"]).ok
