"""Simulations taking turns on the event loop (guard.proxy.offload, guard.world.bridge):
a request that reads a whole world pauses for other sandboxes' requests, one sandbox's
requests still run one at a time and in order, and a transaction that paused never shows
its pending writes to others and never commits over a change made meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from guard.proxy.offload import Offload
from guard.world import bridge
from guard.world.memory import MemoryStore


def _big_world(store: MemoryStore, name: str, n: int) -> None:
    w = store.world(name)
    with w.transaction():
        for i in range(n):
            w.put("customers", {"id": f"cus_{i}", "email": f"c{i}@example.com",
                                "metadata": {"note": "x" * 100}})


def test_a_whole_world_scan_pauses_so_another_sandboxs_request_ends_first() -> None:
    store = MemoryStore(seed=1)
    _big_world(store, "heavy", 20_000)
    ended: list[str] = []

    def search() -> int:
        w = store.world("heavy")
        with w.transaction():
            hits = sum(1 for c in w.scan("customers") if c["email"].startswith("c1999"))
        ended.append("heavy")
        return hits

    def create() -> None:
        w = store.world("light")
        with w.transaction():
            w.put("customers", {"id": "cus_new"})
        ended.append("light")

    async def main() -> int:
        offload = Offload()
        done, heavy = offload.start("sandbox:heavy", search)
        assert done is False  # it paused: 20,000 objects take longer than a slice
        done, _ = offload.start("sandbox:light", create)
        assert done is True  # ran at once, while the search waits for its next turn
        return await heavy  # type: ignore[misc]

    assert asyncio.run(main()) == 11  # c1999 and c19990..c19999
    assert ended == ["light", "heavy"]


def test_one_sandboxs_requests_still_run_one_at_a_time_in_arrival_order() -> None:
    order: list[str] = []

    def step(name: str, waits: bool) -> str:
        order.append(f"{name} starts")
        if waits:
            bridge.wait(asyncio.sleep(0.01))
        order.append(f"{name} ends")
        return name

    async def main() -> list[str]:
        offload = Offload()
        done, first = offload.start("sandbox:a", lambda: step("1", True))
        assert done is False
        results = []
        pending = []
        for name in ("2", "3"):  # arrive while the first waits: queued behind it
            done, later = offload.start("sandbox:a", lambda name=name: step(name, False))
            assert done is False
            pending.append(asyncio.ensure_future(later))
        results.append(await first)  # type: ignore[misc]
        results += await asyncio.gather(*pending)
        done, value = offload.start("sandbox:a", lambda: step("4", False))
        assert (done, value) == (True, "4")  # the turn is free again
        return results

    assert asyncio.run(main()) == ["1", "2", "3"]
    assert order == ["1 starts", "1 ends", "2 starts", "2 ends", "3 starts", "3 ends",
                     "4 starts", "4 ends"]


def test_a_waiting_call_cancelled_gives_up_its_place_and_the_turn_is_not_lost() -> None:
    async def main() -> str:
        offload = Offload()
        release = asyncio.Event()
        done, first = offload.start("k", lambda: bridge.wait(release.wait()))
        waiting = asyncio.ensure_future(offload.call("k", lambda: "never"))
        await asyncio.sleep(0)
        waiting.cancel()
        release.set()
        await first  # type: ignore[misc]
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return await offload.call("k", lambda: "next")

    assert asyncio.run(main()) == "next"


def test_a_paused_transactions_pending_writes_are_not_read_by_others() -> None:
    store = MemoryStore(seed=1)
    w = store.world("s")
    seen: list[object] = []

    def request() -> None:
        with w.transaction():
            w.put("customers", {"id": "cus_1", "name": "pending"})
            bridge.wait(asyncio.sleep(0))  # others run while this transaction is open
            assert w.get("customers", "cus_1") == {"id": "cus_1", "name": "pending"}

    async def main() -> None:
        done, rest = bridge.start(request)
        assert done is False
        seen.append(w.get("customers", "cus_1"))  # the admin API, guard.internal
        seen.append([c["id"] for c in w.scan("customers")])
        seen.append(w.count("customers"))
        seen.append(w.in_transaction)
        await rest  # type: ignore[misc]
        seen.append(w.get("customers", "cus_1"))

    asyncio.run(main())
    assert seen == [None, [], 0, True, {"id": "cus_1", "name": "pending"}]


def test_a_transaction_that_paused_over_a_reset_runs_again_on_the_new_world() -> None:
    """A reset (or a snapshot restored) does not take the world's lock: a transaction
    that read before it and writes after it would write over the new world from the old
    one. It conflicts instead, and atomically() runs it again from the start."""
    store = MemoryStore(seed=1)
    w = store.world("s")
    w.put("customers", {"id": "cus_old"})
    empty = {"v": 1, "collections": {}}
    attempts: list[list[str]] = []

    def request() -> None:
        def work(_changes: object) -> None:
            ids = [c["id"] for c in w.scan("customers")]
            attempts.append(ids)
            if len(attempts) == 1:
                bridge.wait(asyncio.sleep(0))  # the reset happens here
            w.put("customers", {"id": f"cus_after_{len(ids)}"})

        w.atomically(work)

    async def main() -> None:
        done, rest = bridge.start(request)
        assert done is False
        w.load(empty, replace=True)
        await rest  # type: ignore[misc]

    asyncio.run(main())
    assert attempts == [["cus_old"], []]
    assert [c["id"] for c in w.scan("customers")] == ["cus_after_0"]
