"""No request stalls guard for everyone: while one sandbox sends the worst inputs we know
(long runs of word characters in bodies, headers and paths, a 1 MiB path, 2 MiB of
headers, secret-shaped keys by the thousand, card-like digits, 16 KB of letters and then
its live event feed), another sandbox's simple request is answered about as fast as
without them. guard runs as its own process, so the clients here do not share its
interpreter; the comparison is with a baseline measured in the same test, never with a
wall-clock constant."""

from __future__ import annotations

import json
import socket
import statistics
import time

from requests.adapters import HTTPAdapter

from guard.head_limits import HEADER_RULE_ID, URL_RULE_ID
from tests.guard_process import GuardProcess

WORD = b"a" * 200_000


def post(url: str, ctype: str, body: bytes) -> bytes:
    host = url.split("/")[2]
    return (f"POST {url} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def get(url: str, headers: bytes = b"") -> bytes:
    host = url.split("/")[2].encode()
    return b"GET " + url.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + headers + b"\r\n"


STRIPE = "http://api.stripe.com/v1/customers"
WORST = {
    "200 KB of one word": post(STRIPE, "text/plain", WORD),
    "4000 secret-named form fields": post(
        STRIPE, "application/x-www-form-urlencoded",
        b"&".join(b"api_key%d=" % i + b"a" * 50 for i in range(4000))),
    "3000 secret-named JSON keys": post(
        STRIPE, "application/json",
        json.dumps({f"secret{i}": "a" * 30 for i in range(3000)}).encode()),
    "card-like digits": post("http://unknown.example.org/upload", "text/plain",
                             b"4242 " * 40_000),
    "a key=value run": post("http://unknown.example.org/upload", "text/plain",
                            b"password=" + WORD),
    "a 1 MiB path": get(STRIPE + "/" + "a" * (1024 * 1024)),
    "2 MiB of headers": get(STRIPE, b"X-Big: " + b"b" * (2 * 1024 * 1024) + b"\r\n"),
    "60 headers of 1000 letters": get(STRIPE, b"".join(
        b"X-%d: %s\r\n" % (i, b"k" * 1000) for i in range(60))),
    "16 KB of letters": post(STRIPE, "text/plain", b"a" * 16384),
    "then its live feed": get("http://guard.internal/events/stream?timeout=0"),
}


class FromAddress(HTTPAdapter):
    """Connections from another loopback address: another sandbox."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def send(port: int, request: bytes) -> socket.socket:
    """Send a whole request (sendall returns once guard has read all but the last socket
    buffer of it) and leave its answer to be read."""
    c = socket.create_connection(("127.0.0.1", port), timeout=300)
    c.sendall(request)
    return c


def answer_status(c: socket.socket) -> int:
    with c:
        head = b""
        while b"\r\n" not in head:
            chunk = c.recv(65536)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def test_another_sandbox_is_served_promptly_while_one_sends_the_worst_inputs(tmp_path):
    g = GuardProcess(tmp_path / "conf", tmp_path / "audit.jsonl", "-q", "--state", "off")
    try:
        victim = g.session(authorization="Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc")
        victim.mount("https://", FromAddress("127.0.0.2"))

        def simple() -> float:
            t0 = time.perf_counter()
            r = victim.get("https://api.stripe.com/v1/customers/cus_missing")
            assert r.status_code == 404
            return time.perf_counter() - t0

        for _ in range(5):
            simple()  # the tunnel and the TLS session are up
        baseline = statistics.median(simple() for _ in range(20))
        slow: dict[str, float] = {}
        statuses: dict[str, int] = {}
        for name, request in WORST.items():
            waits = []
            for _ in range(5):
                attack = send(g.port, request)  # guard is reading or working on it
                waits.append(simple())  # meanwhile, another sandbox's call
                statuses[name] = answer_status(attack)
            # The fastest of five: an input that stalls guard's event loop slows every one
            # of them, while a busy machine (a parallel test run on two cores) slows only
            # some; the median failed a CI run once at 10.7x with no stall in guard (the
            # same input measured 2-4x on a quiet machine, before and after).
            slow[name] = min(waits)
    finally:
        g.stop()
    assert statuses["a 1 MiB path"] == 414 and statuses["2 MiB of headers"] == 431
    assert statuses["then its live feed"] == 200
    too_slow = {name: f"{wait / baseline:.1f}x" for name, wait in slow.items()
                if wait > 10 * baseline}
    assert not too_slow, (f"baseline {baseline * 1000:.1f} ms", too_slow)
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert {URL_RULE_ID, HEADER_RULE_ID} <= {e.get("rule") for e in events}
