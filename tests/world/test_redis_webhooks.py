"""Stripe webhook deliveries across replicas: queued in Redis when the request commits, so
any live replica makes them; each once while replicas live; a replica killed with
deliveries pending leaves them to the others; SIGTERM lets deliveries under way finish.
Every guard here is a separate ``guard run`` process; the receiver is on loopback."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe

from guard.proxy.addons.deliveries import RULE
from guard.world.redis import RedisStore
from tests.guard_process import GuardProcess
from tests.redis_server import RedisServer

AUTH = {"Authorization": "Bearer sk_test_replicas"}
API = "https://api.stripe.com/v1"
DEADLINE = 60.0  # seconds to wait for what must happen (not a performance bound)


class Receiver:
    """A loopback webhook endpoint: records each POST; the first ``fail_first`` get a 500;
    with ``hold`` set, each POST waits for :meth:`release` before it is answered."""

    def __init__(self, fail_first: int = 0, hold: bool = False) -> None:
        self.fail_first = fail_first
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        self.released = threading.Event()
        if not hold:
            self.released.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.arrived:
                    n = len(outer.received)
                    outer.received.append({"body": body.decode(),
                                           "signature": self.headers["Stripe-Signature"]})
                    outer.arrived.notify_all()
                outer.released.wait(DEADLINE)
                self.send_response(500 if n < outer.fail_first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, DEADLINE)
            return list(self.received)

    def event_ids(self, secret: str) -> list[str]:
        return [stripe.Webhook.construct_event(r["body"], r["signature"], secret).id
                for r in self.received]

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _attempts(*audits: Path) -> list[dict[str, Any]]:
    return [e for path in audits if path.exists()
            for e in map(json.loads, path.read_text().splitlines()) if e["rule"] == RULE]


def _settled(url: str) -> None:
    """Wait until the queue in Redis is empty (every delivery finished or given up)."""
    store = RedisStore(url)
    try:
        end = time.monotonic() + DEADLINE
        while store.deliveries.pending() and time.monotonic() < end:
            time.sleep(0.05)
        assert store.deliveries.pending() == []
    finally:
        store.close()


def _events(url: str) -> list[dict[str, Any]]:
    store = RedisStore(url)
    try:
        return store.world("127.0.0.1").list("stripe.events")
    finally:
        store.close()


def test_two_replicas_deliver_each_event_once(redis_server: RedisServer, confdir: Path,
                                              tmp_path: Path, receiver: Receiver) -> None:
    url = redis_server.prefixed()
    audits = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    a = GuardProcess(confdir, audits[0], "--store", url, "-q")
    b = GuardProcess(confdir, audits[1], "--store", url, "-q")
    try:
        sa, sb = a.session(**AUTH), b.session(**AUTH)
        secret = sa.post(f"{API}/webhook_endpoints", data={
            "url": receiver.url, "enabled_events[]": "customer.created"}).json()["secret"]
        for i in range(20):
            r = (sa, sb)[i % 2].post(f"{API}/customers", data={"email": f"c{i}@example.com"})
            assert r.status_code == 200
        receiver.wait_for(20)
        _settled(url)
    finally:
        a.stop()
        b.stop()
    created = [e["id"] for e in _events(url) if e["type"] == "customer.created"]
    got = receiver.event_ids(secret)
    assert len(created) == 20 and sorted(got) == sorted(created)  # each once, none twice
    attempts = _attempts(*audits)
    assert len(attempts) == 20 and {e["status"] for e in attempts} == {200}
    assert all(e["pending_webhooks"] == 0 for e in _events(url) if e["id"] in created)


def test_a_replica_killed_before_its_deliveries_are_due_leaves_them_to_the_other(
        redis_server: RedisServer, confdir: Path, tmp_path: Path) -> None:
    url = redis_server.prefixed()
    receiver = Receiver(fail_first=5)  # every first attempt fails: each retry is queued
    audits = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    retry = ("--webhook-retries", "3s")
    a = GuardProcess(confdir, audits[0], "--store", url, "-q", *retry)
    b = None
    try:
        sa = a.session(**AUTH)
        secret = sa.post(f"{API}/webhook_endpoints", data={
            "url": receiver.url, "enabled_events[]": "customer.created"}).json()["secret"]
        for i in range(5):
            assert sa.post(f"{API}/customers", data={"email": f"k{i}@example.com"}).ok
        receiver.wait_for(5)
        end = time.monotonic() + DEADLINE
        while len(_attempts(audits[0])) < 5 and time.monotonic() < end:  # a audited them
            time.sleep(0.05)
        a.kill()  # SIGKILL, with five retries due in 3 s
        assert len(receiver.received) == 5
        b = GuardProcess(confdir, audits[1], "--store", url, "-q", *retry)
        receiver.wait_for(10)
        _settled(url)
    finally:
        a.kill()
        if b is not None:
            b.stop()
        receiver.close()
    created = sorted(e["id"] for e in _events(url) if e["type"] == "customer.created")
    got = receiver.event_ids(secret)
    assert len(got) == 10 and sorted(set(got)) == created
    assert all(got.count(i) == 2 for i in created)  # the 500, then b's 200: no third
    by_b = _attempts(audits[1])
    assert sorted(e["delivery"]["event"] for e in by_b) == created
    assert {(e["status"], e["delivery"]["attempt"]) for e in by_b} == {(200, 2)}
    assert all(e["pending_webhooks"] == 0 for e in _events(url) if e["id"] in created)


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_sigterm_lets_a_delivery_under_way_finish_before_guard_exits(
        redis_server: RedisServer, confdir: Path, tmp_path: Path, store: str) -> None:
    url = redis_server.prefixed()
    receiver = Receiver(hold=True)
    audit = tmp_path / "a.jsonl"
    where = ("--store", url) if store == "redis" else ("--state", "off")
    g = GuardProcess(confdir, audit, *where, "-q")
    try:
        s = g.session(**AUTH)
        s.post(f"{API}/webhook_endpoints", data={"url": receiver.url,
                                                 "enabled_events[]": "customer.created"})
        assert s.post(f"{API}/customers", data={"email": "drain@example.com"}).ok
        receiver.wait_for(1)  # guard's POST is waiting for its answer
        g.proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + DEADLINE
        while not _refuses(g.port) and time.monotonic() < end:
            time.sleep(0.05)  # draining: no longer listening
        assert g.proc.poll() is None, "guard exited with a delivery under way"
        receiver.release()
        assert g.proc.wait(DEADLINE) == 0
    finally:
        g.stop()
        receiver.close()
    attempts = _attempts(audit)
    assert [(e["status"], e["delivery"]["attempt"]) for e in attempts] == [(200, 1)]
    assert len(receiver.received) == 1
    if store == "redis":
        _settled(url)  # finished in Redis: no other replica delivers it again
