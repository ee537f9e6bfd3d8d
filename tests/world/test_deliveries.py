"""The delivery queue of both backends: due jobs are claimed once, with a lease; only the
claim's holder settles them; a lapsed lease hands the job to the next claimer."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from guard.world import WorldStore
from guard.world.deliveries import Delivery
from guard.world.redis import RedisStore
from tests.redis_server import RedisServer


def _job(n: int, **kw: object) -> Delivery:
    return Delivery("stripe.webhook", "sbx", f"evt_{n}", "we_1", sandbox="sbx",
                    client="127.0.0.1", allow=("hooks.test",), **kw)  # type: ignore[arg-type]


def test_a_job_is_not_claimed_before_it_is_due_and_then_once(store: WorldStore) -> None:
    q = store.deliveries
    q.add([_job(1), _job(2)], due=100.0)
    assert q.claim(99.0, 60.0, 10) == []
    claimed = q.claim(100.0, 60.0, 10)
    assert sorted(j.event for j, _ in claimed) == ["evt_1", "evt_2"]
    assert claimed[0][0] == _job(int(claimed[0][0].event[4:]))  # every field round-trips
    assert q.claim(120.0, 60.0, 10) == []  # leased until 160
    assert [d for _, d in q.pending()] == [160.0, 160.0]


def test_queueing_a_job_again_keeps_its_place(store: WorldStore) -> None:
    q = store.deliveries
    q.add([_job(1)], due=10.0)
    q.add([_job(1)], due=500.0)
    assert [(j.event, d) for j, d in q.pending()] == [("evt_1", 10.0)]


def test_finish_and_retry_need_the_claims_token(store: WorldStore) -> None:
    q = store.deliveries
    q.add([_job(1)], due=0.0)
    (job, token), = q.claim(1.0, 60.0, 10)
    assert not q.finish(job, "not-the-token")
    assert not q.retry(job, "not-the-token", 5.0)
    assert q.retry(job.next_attempt(), token, 30.0)
    assert not q.finish(job, token)  # put back: the old claim is gone
    assert q.claim(29.0, 60.0, 10) == []
    (again, token2), = q.claim(30.0, 60.0, 10)
    assert again.attempt == 1 and token2 != token
    assert q.finish(again, token2)
    assert q.pending() == [] and q.claim(10_000.0, 60.0, 10) == []


def test_a_lapsed_lease_gives_the_job_to_the_next_claimer_and_voids_the_first(
        store: WorldStore) -> None:
    q = store.deliveries
    q.add([_job(1)], due=0.0)
    (job, first), = q.claim(1.0, 10.0, 10)
    (same, second), = q.claim(11.0, 10.0, 10)  # the first claimer died (or hung)
    assert same.event == job.event and second != first
    assert not q.finish(job, first)  # the late first claimer changes nothing
    assert q.finish(same, second)


def test_claims_take_the_earliest_due_first_and_at_most_limit(store: WorldStore) -> None:
    q = store.deliveries
    for n, due in ((1, 30.0), (2, 10.0), (3, 20.0)):
        q.add([_job(n)], due=due)
    assert [j.event for j, _ in q.claim(100.0, 60.0, 2)] == ["evt_2", "evt_3"]
    assert [j.event for j, _ in q.claim(100.0, 60.0, 2)] == ["evt_1"]


def test_adding_wakes_the_deliverer_of_this_process(store: WorldStore) -> None:
    woken: list[float] = []
    store.deliveries.on_add = woken.append
    store.deliveries.add([], due=1.0)
    store.deliveries.add([_job(1)], due=2.0)
    assert woken == [2.0]


def test_two_replicas_claiming_at_once_never_get_one_job_twice(
        redis_server: RedisServer) -> None:
    url = redis_server.prefixed()
    stores = [RedisStore(url), RedisStore(url)]
    try:
        stores[0].deliveries.add([_job(n) for n in range(200)], due=0.0)
        got: list[list[str]] = [[], []]

        together = threading.Barrier(2)  # each round both claim at once, however loaded

        def claimer(i: int) -> None:
            for _ in range(60):  # 200 jobs, 3 per claim: both are empty well before
                together.wait(30)
                claimed = stores[i].deliveries.claim(1.0, 600.0, 3)
                got[i] += [j.event for j, _ in claimed]

        threads = [threading.Thread(target=claimer, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        every = got[0] + got[1]
        assert len(every) == 200 and len(set(every)) == 200
        assert got[0] and got[1], "both replicas should have claimed some"
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize("due", [1764768000.123456, 0.5])
def test_due_times_keep_their_precision_in_redis(make_store: Callable[..., WorldStore],
                                                  due: float) -> None:
    q = make_store().deliveries
    q.add([_job(1)], due=due)
    assert q.pending()[0][1] == due
    assert q.claim(due - 0.000001, 60.0, 1) == []
    assert len(q.claim(due, 60.0, 1)) == 1
