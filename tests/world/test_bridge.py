"""guard.world.bridge: synchronous world code run as greenlets on the event loop, its
waits awaited there, and the lock such code shares with threads."""

from __future__ import annotations

import asyncio
import threading

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
