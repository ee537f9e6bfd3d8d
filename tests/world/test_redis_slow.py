"""A slow Redis stalls only the requests that wait for it: a request's Redis round trips
are awaited on the event loop (guard.world.bridge, guard.world.resp, each command on a
connection of its own), so the loop every flow shares keeps serving other sandboxes while
one sandbox's command hangs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.redis_relay import RedisRelay
from tests.redis_server import RedisServer
from tests.sandboxes import token

API = "https://api.stripe.com/v1"


@pytest.fixture
def relay(redis_server: RedisServer) -> Iterator[RedisRelay]:
    r = RedisRelay(redis_server.port)
    yield r
    r.close()


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _post(g, sandbox: str, email: str) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False
        return s.post(f"{API}/customers", data={"email": email},
                      headers={"Authorization": "Bearer sk_test_slow",
                               "X-Guard-Sandbox": token(sandbox)},
                      proxies={"https": g.url}, verify=g.ca, timeout=60)


def test_a_sandbox_whose_redis_command_hangs_does_not_stall_another_sandbox(
        guard_proxy, relay: RedisRelay) -> None:
    # A socket timeout far beyond the test's: the held command waits, it does not fail.
    g = guard_proxy(store=relay.url("?socket_timeout=120&prefix=slow:"),
                    sandbox_from="header")
    for sandbox in ("slow-one", "fast-one"):  # worlds opened, connections pooled
        assert _post(g, sandbox, f"warm@{sandbox}.example").status_code == 200
    relay.hold(b"slow-one")
    answers: dict[str, requests.Response] = {}
    slow = threading.Thread(target=lambda: answers.update(
        slow=_post(g, "slow-one", "held@example.com")))
    slow.start()
    try:
        assert relay.holding.wait(60), "the slow sandbox's command never reached Redis"
        fast = _post(g, "fast-one", "free@example.com")
        assert fast.status_code == 200, fast.text
        assert slow.is_alive() and "slow" not in answers  # still waiting on Redis
    finally:
        relay.release()
        slow.join(60)
    assert answers["slow"].status_code == 200, answers["slow"].text


def test_sigterm_drains_a_request_in_flight_and_then_stops(
        relay: RedisRelay, confdir, tmp_path) -> None:
    import signal

    from tests.guard_process import GuardProcess

    g = GuardProcess(confdir, tmp_path / "audit.jsonl", "--store",
                     relay.url("?socket_timeout=120&prefix=drain:"), "-q")
    try:
        with g.session(Authorization="Bearer sk_test_drain") as s:
            assert s.post(f"{API}/customers", data={"name": "warm"}).status_code == 200
        relay.hold(b"stripe.customers")
        answers: dict[str, requests.Response] = {}

        def post() -> None:
            with g.session(Authorization="Bearer sk_test_drain") as s:
                answers["held"] = s.post(f"{API}/customers", data={"name": "in flight"},
                                         timeout=60)

        inflight = threading.Thread(target=post)
        inflight.start()
        assert relay.holding.wait(60)
        g.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 30  # draining: the listener closes first
        while time.time() < deadline and _listens(g.port):
            time.sleep(0.1)
        assert not _listens(g.port)
        assert g.proc.poll() is None  # still up: the held request is not answered yet
        relay.release()
        inflight.join(60)
        assert answers["held"].status_code == 200, answers["held"].text
        assert g.proc.wait(30) == 0
    finally:
        g.stop()


def test_an_admin_call_waiting_on_redis_does_not_stall_the_proxy(
        guard_proxy, relay: RedisRelay) -> None:
    from guard.client import Admin

    g = guard_proxy(store=relay.url("?socket_timeout=120&prefix=slowadmin:"),
                    sandbox_from="header", admin_listen=("127.0.0.1", 0))
    assert _post(g, "fast-two", "warm@example.com").status_code == 200
    with Admin(g.admin_url, g.admin_token, timeout=60) as admin:
        admin.create("held-admin")
        relay.hold(b"held-admin")
        done: dict[str, object] = {}
        snap = threading.Thread(target=lambda: done.update(
            snap=admin.snapshot("held-admin", "snap-held")))
        snap.start()
        try:
            assert relay.holding.wait(60), "the admin call never reached Redis"
            fast = _post(g, "fast-two", "free@example.com")
            assert fast.status_code == 200, fast.text
            assert snap.is_alive() and "snap" not in done  # still waiting on Redis
        finally:
            relay.release()
            snap.join(60)
    assert "snap" in done


def test_simulated_requests_on_redis_run_on_the_loop_with_no_thread_hop(
        guard_proxy, redis_server: RedisServer) -> None:
    """Creates and retrieves wait on Redis from the event loop (guard.world.bridge): no
    store thread and no feed thread is started, the objects are all there, one each, and
    the live feed has every request's event once, in order."""
    g = guard_proxy(store=redis_server.prefixed(), sandbox_from="header")
    threads_before = {t.name for t in threading.enumerate()}
    created: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(5):
            r = _post(g, "loop-one", f"c{n}-{i}@example.com")
            assert r.status_code == 200, r.text
            with lock:
                created.append(r.json()["id"])

    clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(120)
    assert len(created) == len(set(created)) == 20
    with requests.Session() as s:
        s.trust_env = False
        for cid in created:
            r = s.get(f"{API}/customers/{cid}", proxies={"https": g.url}, verify=g.ca,
                      headers={"Authorization": "Bearer sk_test_slow",
                               "X-Guard-Sandbox": token("loop-one")}, timeout=60)
            assert r.status_code == 200 and r.json()["id"] == cid
    started = {t.name for t in threading.enumerate()} - threads_before
    assert not [n for n in started if n.startswith(("guard-store", "guard-feed"))], started
    events = g.worlds.events("loop-one", limit=1000)
    assert [e["id"] for e in events] == sorted({e["id"] for e in events})
    urls = [e["url"] for e in events]
    assert urls.count(f"{API}/customers") == 20
    assert sorted(u for u in urls if u != f"{API}/customers") == sorted(
        f"{API}/customers/{cid}" for cid in created)
