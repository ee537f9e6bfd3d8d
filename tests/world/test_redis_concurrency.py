"""Two guard replicas on one Redis serve one sandbox as one Stripe account: concurrent
requests through both, with the official wire format, lose nothing and duplicate nothing.

The replicas are two ``guard run`` processes, each with its own Redis connections and
cache, on a redis-server the session started.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from guard.world.redis import RedisStore
from tests.guard_process import GuardProcess
from tests.redis_server import RedisServer

AUTH = {"Authorization": "Bearer sk_test_replicas"}
API = "https://api.stripe.com/v1"


@pytest.fixture
def replicas(redis_server: RedisServer, confdir: Path,
             tmp_path: Path) -> Iterator[tuple[list[GuardProcess], str]]:
    """Two ``guard run`` processes on one Redis prefix: two replicas of one deployment."""
    url = redis_server.prefixed()
    guards: list[GuardProcess] = []
    try:
        for n in range(2):
            guards.append(GuardProcess(confdir, tmp_path / f"audit-{n}.jsonl", "--store", url,
                                       "-q"))
        yield guards, url
    finally:
        for g in guards:
            g.stop()


def _sessions(guards: list[GuardProcess]) -> list[requests.Session]:
    return [g.session(**AUTH) for g in guards]


def _together(n: int, fn: Callable[[int], requests.Response]) -> list[requests.Response]:
    """Run ``fn(i)`` for i in range(n) at once (a barrier lines the threads up)."""
    barrier = threading.Barrier(n)

    def run(i: int) -> requests.Response:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_requests_with_one_idempotency_key_create_one_customer(replicas) -> None:
    guards, url = replicas
    sessions = _sessions(guards)
    answers = _together(12, lambda i: sessions[i % 2].post(
        f"{API}/customers", data={"email": "same@example.com"},
        headers={"Idempotency-Key": "key-1"}))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["id"] for a in answers}) == 1
    listed = sessions[0].get(f"{API}/customers", params={"limit": 100}).json()["data"]
    assert [c["email"] for c in listed] == ["same@example.com"]
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 11


def test_one_idempotency_key_with_different_parameters_on_two_replicas_creates_one_object(
        replicas) -> None:
    """Stripe's rule across replicas: the first call with a key wins; a concurrent call
    with the same key and other parameters is refused (400 idempotency_error), never a
    second object. (A call with the same parameters waits for the first and replays it:
    guard's transactions are serial per world, so no call ever sees one in flight and
    Stripe's 409 for a concurrent duplicate does not arise.)"""
    guards, url = replicas
    sessions = _sessions(guards)
    answers = _together(10, lambda i: sessions[i % 2].post(
        f"{API}/customers", data={"email": f"n{i}@example.com"},
        headers={"Idempotency-Key": "key-2"}))
    won = [a for a in answers if a.status_code == 200]
    assert len(won) == 1, [a.status_code for a in answers]
    refused = [a for a in answers if a.status_code != 200]
    assert {a.status_code for a in refused} == {400}
    assert {a.json()["error"]["type"] for a in refused} == {"idempotency_error"}
    listed = sessions[1].get(f"{API}/customers", params={"limit": 100}).json()["data"]
    assert [c["id"] for c in listed] == [won[0].json()["id"]]


def test_concurrent_updates_of_one_customer_through_two_replicas_lose_no_field(
        replicas) -> None:
    guards, url = replicas
    sessions = _sessions(guards)
    cus = sessions[0].post(f"{API}/customers", data={"name": "Ann"}).json()["id"]
    answers = _together(16, lambda i: sessions[i % 2].post(
        f"{API}/customers/{cus}", data={f"metadata[k{i}]": str(i)}))
    assert {a.status_code for a in answers} == {200}
    final = sessions[1].get(f"{API}/customers/{cus}").json()
    assert final["metadata"] == {f"k{i}": str(i) for i in range(16)}
    assert final["name"] == "Ann"


def test_objects_created_through_both_replicas_page_in_one_stable_order(replicas) -> None:
    guards, url = replicas
    sessions = _sessions(guards)
    created = _together(20, lambda i: sessions[i % 2].post(
        f"{API}/customers", data={"email": f"c{i}@example.com"}))
    ids = {a.json()["id"] for a in created}
    assert len(ids) == 20
    pages, after = [], None
    for n in range(4):
        params = {"limit": 6, **({"starting_after": after} if after else {})}
        page = sessions[n % 2].get(f"{API}/customers", params=params).json()
        pages.append([c["id"] for c in page["data"]])
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    seen = [i for p in pages for i in p]
    assert sorted(seen) == sorted(ids) and len(seen) == 20  # nothing skipped or repeated
    assert sessions[0].get(f"{API}/customers", params={"limit": 100}).json()["data"] == \
        sessions[1].get(f"{API}/customers", params={"limit": 100}).json()["data"]


def test_outbox_records_from_both_replicas_are_numbered_once_each(replicas) -> None:
    guards, url = replicas
    sessions = _sessions(guards)
    body = {"personalizations": [{"to": [{"email": "x@example.com"}]}],
            "from": {"email": "me@example.com"}, "subject": "hi",
            "content": [{"type": "text/plain", "value": "hello"}]}
    answers = _together(10, lambda i: sessions[i % 2].post(
        "https://api.sendgrid.com/v3/mail/send", json=body,
        headers={"Authorization": "Bearer SG.test"}))
    assert {a.status_code for a in answers} == {202}
    store = RedisStore(url)
    try:
        outbox = store.world("127.0.0.1").list("outbox")
    finally:
        store.close()
    assert [r["id"] for r in outbox] == [f"out_{n:06d}" for n in range(1, 11)]


def test_a_counter_incremented_by_many_writers_loses_no_increment(
        redis_server: RedisServer) -> None:
    url = redis_server.prefixed()
    stores = [RedisStore(url) for _ in range(6)]

    def work(store: RedisStore) -> None:
        w = store.world("shared")
        for _ in range(25):
            def bump(changes: object) -> None:
                obj = w.get("things", "x") or {"id": "x", "n": 0}
                obj["n"] += 1
                w.put("things", obj)
                w.next("bumps")
            w.atomically(bump)

    try:
        threads = [threading.Thread(target=work, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        w = stores[0].world("shared")
        assert w.get("things", "x")["n"] == 150
        assert w.next("bumps") == 151
        assert stores[0].info("shared").version == 151
    finally:
        for s in stores:
            s.close()


def test_the_live_feed_shows_every_replicas_events_and_wakes_across_them(replicas) -> None:
    guards, url = replicas
    a, b = _sessions(guards)
    a.post(f"{API}/customers", data={"email": "via-a@example.com"})
    events = b.get("https://guard.internal/events").json()["events"]
    assert [(e["host"], e["method"]) for e in events] == [("api.stripe.com", "POST")]
    last = events[-1]["id"]
    got: dict[str, str] = {}

    def listen() -> None:
        r = guards[1].session().get("https://guard.internal/events/stream",
                                    headers={"Last-Event-ID": str(last)},
                                    params={"timeout": "30"})
        got["body"] = r.text

    t = threading.Thread(target=listen)
    t.start()
    threading.Event().wait(0.5)  # the listener is waiting inside replica b
    a.get(f"{API}/customers", params={"limit": 1})
    t.join(60)
    ids = [line[4:] for line in got["body"].splitlines() if line.startswith("id: ")]
    assert ids == [str(last + 1)]
