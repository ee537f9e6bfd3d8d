"""guard.world.bridge: synchronous world code run as greenlets on the event loop, its
waits awaited there, and the lock such code shares with threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from guard.world import bridge


def test_waits_inside_the_code_are_awaited_on_the_loop_which_serves_others_meanwhile(
) -> None:
    order: list[str] = []

    def code(name: str) -> str:
        order.append(f"{name} starts")
        bridge.wait(asyncio.sleep(0.01))
        order.append(f"{name} resumes")
        return name.upper()

    async def main() -> list[str]:
        return list(await asyncio.gather(bridge.run(lambda: code("a")),
                                         bridge.run(lambda: code("b"))))

    assert asyncio.run(main()) == ["A", "B"]
    # both started before either resumed: the first's wait did not hold the loop
    assert order[:2] == ["a starts", "b starts"]
    assert sorted(order[2:]) == ["a resumes", "b resumes"]


def test_a_failed_wait_raises_where_the_code_waited_and_the_codes_own_error_reaches_run(
) -> None:
    async def fails() -> None:
        raise KeyError("from the loop")

    def code() -> str:
        try:
            bridge.wait(fails())
        except KeyError as e:
            caught = str(e)
        raise ValueError(f"after {caught}")

    with pytest.raises(ValueError, match="after 'from the loop'"):
        asyncio.run(bridge.run(code))


def test_wait_outside_run_is_refused_and_its_coroutine_closed() -> None:
    async def never() -> None:
        raise AssertionError("not run")

    coro = never()
    with pytest.raises(RuntimeError, match="outside bridge.run"):
        bridge.wait(coro)
    assert coro.cr_frame is None  # closed: no "never awaited" warning
    assert not bridge.bridged()


def test_sleep_pauses_without_holding_the_loop() -> None:
    ticks: list[int] = []

    async def ticker() -> None:
        for i in range(3):
            ticks.append(i)
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(bridge.run(lambda: bridge.sleep(0.02)), ticker())

    asyncio.run(main())
    assert ticks == [0, 1, 2]


def test_the_lock_keeps_two_bridged_requests_apart_and_is_reentrant() -> None:
    lock = bridge.Lock()
    inside: list[str] = []
    overlaps: list[str] = []

    def request(name: str) -> None:
        with lock, lock:  # re-entrant for its holder
            if inside:
                overlaps.append(name)
            inside.append(name)
            bridge.wait(asyncio.sleep(0.01))  # the other request runs meanwhile
            inside.remove(name)

    async def main() -> None:
        await asyncio.gather(*(bridge.run(lambda n=n: request(n)) for n in "abcd"))

    asyncio.run(main())
    assert overlaps == []  # a threading.RLock would have let them all in together


def test_a_bridged_request_waits_on_the_loop_for_a_lock_a_thread_holds() -> None:
    lock = bridge.Lock()
    held, go = threading.Event(), threading.Event()
    events: list[str] = []

    def thread() -> None:
        with lock:
            held.set()
            go.wait(10)
            events.append("thread releases")

    async def main() -> None:
        t = threading.Thread(target=thread)
        t.start()
        held.wait(10)

        def request() -> None:
            with lock:
                events.append("request has it")

        waiting = asyncio.ensure_future(bridge.run(request))
        await asyncio.sleep(0.02)
        events.append("loop still serves")  # the request waits without blocking the loop
        go.set()
        await waiting
        t.join(10)

    asyncio.run(main())
    assert events == ["loop still serves", "thread releases", "request has it"]


def test_only_the_holder_may_release_the_lock() -> None:
    lock = bridge.Lock()
    lock.acquire()
    failed: list[BaseException] = []

    def other() -> None:
        try:
            lock.release()
        except RuntimeError as e:
            failed.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert failed and "does not hold" in str(failed[0])
    lock.release()


def test_start_runs_code_that_never_waits_to_its_end_at_once() -> None:
    assert bridge.start(lambda: 42) == (True, 42)
    with pytest.raises(KeyError, match="own"):
        bridge.start(lambda: {}["own"])


def test_start_hands_back_the_rest_of_code_that_waits() -> None:
    def code() -> str:
        bridge.wait(asyncio.sleep(0))
        return "done"

    async def main() -> str:
        done, rest = bridge.start(code)
        assert done is False
        return await rest  # type: ignore[misc]

    assert asyncio.run(main()) == "done"


def test_a_long_run_pauses_each_slice_so_the_loop_serves_the_others() -> None:
    """A greenlet that never waits but calls pause() in its loop (a world's scans do, per
    object) lets another request run to its end before it ends: without the pause it
    would run until its own limit with the other request still waiting."""
    other_done = threading.Event()
    turns: list[str] = []

    def long_scan() -> int:
        n = 0
        limit = time.monotonic() + 60  # a bound, so a broken pause fails, not hangs
        while not other_done.is_set() and time.monotonic() < limit:
            n += 1
            bridge.pause()
        turns.append("long ends")
        return n

    def short() -> None:
        turns.append("short ends")
        other_done.set()

    async def main() -> None:
        long = asyncio.ensure_future(bridge.run(long_scan))
        await asyncio.sleep(0)  # the long one has started
        await bridge.run(short)
        await long

    asyncio.run(main())
    assert turns == ["short ends", "long ends"]


def test_pause_outside_run_does_nothing() -> None:
    bridge.pause()  # no loop to hand to: it simply returns


def test_code_on_the_loop_cannot_wait_for_a_lock_a_bridged_request_holds_and_is_told() -> None:
    """Waiting would stop the loop, and the holder with it (a hang for every flow): the
    caller on the loop gets WouldBlockLoop instead; a thread still waits its turn."""
    lock = bridge.Lock()
    release = asyncio.Event()
    outcome: list[str] = []

    def holder() -> None:
        with lock:
            bridge.wait(release.wait())

    def from_thread() -> None:
        with lock:
            outcome.append("thread got it")

    async def main() -> None:
        held = asyncio.ensure_future(bridge.run(holder))
        await asyncio.sleep(0.01)
        with pytest.raises(bridge.WouldBlockLoop):
            lock.acquire()
        thread = asyncio.ensure_future(asyncio.to_thread(from_thread))
        await asyncio.sleep(0.05)
        assert outcome == []  # the thread waits for the holder
        release.set()
        await held
        await thread

    asyncio.run(main())
    assert outcome == ["thread got it"]
