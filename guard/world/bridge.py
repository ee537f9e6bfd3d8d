"""Blocking world-store code on the event loop, without blocking it.

The world API is synchronous: a simulated request's handler reads objects and commits its
transaction with plain calls (``world.get``, ``with world.transaction()``), whatever the
store. The in-process store answers from memory; the Redis store waits for the network.
:func:`run` runs such code in a greenlet on the event loop's own thread: where the code
reaches a Redis round trip, :func:`wait` switches back to the loop, which awaits the reply
(serving every other flow meanwhile) and then switches back into the code with it. A
request on Redis so costs no thread hop, no hand-over of the GIL and no context switch,
and the handler's code is the same for both stores. (SQLAlchemy's asyncio layer is built
the same way.)

Code run this way must not hold a plain ``threading`` lock across a wait: another request
on the loop that wants it would block the loop's thread, and with it the holder. State
such code shares takes :class:`Lock`, held by one thread or one bridged greenlet at a
time; a bridged greenlet that finds it taken waits on the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import greenlet


class _Bridged(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet :func:`run` drives: its parent is the loop's greenlet."""


def bridged() -> bool:
    """Whether this code runs under :func:`run` (its waits are awaited on the loop)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def wait[T](awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, awaited on the loop; only from code :func:`run` runs
    (anywhere else there is no loop to hand it to: a programming error)."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        if asyncio.iscoroutine(awaitable):
            awaitable.close()  # never awaited: no warning about it
        raise RuntimeError("bridge.wait() outside bridge.run()")
    return cast(T, current.parent.switch(awaitable))


async def run[T](fn: Callable[[], T]) -> T:
    """``fn()`` on this loop's thread, each :func:`wait` inside it awaited here. An
    exception of an awaited step is raised inside ``fn`` where it waited; ``fn``'s own
    exception is raised here."""
    g = _Bridged(fn)
    g.gr_context = contextvars.copy_context()
    step: Any = g.switch()
    while not g.dead:
        try:
            value = await step
        except BaseException as e:  # noqa: BLE001 - raised inside fn, where it waits
            step = g.throw(e)
        else:
            step = g.switch(value)
    return cast(T, step)


def sleep(seconds: float) -> None:
    """``time.sleep``, or under :func:`run` a pause that lets the loop serve others."""
    if bridged():
        wait(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


class Lock:
    """A re-entrant lock held by one thread, or by one greenlet :func:`run` drives, at a
    time (a ``threading.RLock`` would let two bridged requests on one loop thread in
    together). A bridged greenlet that finds it taken waits on the loop, retrying with a
    growing pause (up to 5 ms); a thread blocks as on any lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: greenlet.greenlet | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = greenlet.getcurrent()
        if self._owner is me:
            self._depth += 1
            return
        if not self._lock.acquire(blocking=False):
            if isinstance(me, _Bridged):
                pause = 0.0002
                while not self._lock.acquire(blocking=False):
                    wait(asyncio.sleep(pause))
                    pause = min(pause * 2, 0.005)
            else:
                self._lock.acquire()
        self._owner, self._depth = me, 1

    def release(self) -> None:
        if self._owner is not greenlet.getcurrent():
            raise RuntimeError("release of a bridge.Lock its caller does not hold")
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
