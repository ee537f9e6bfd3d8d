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
time; a bridged greenlet that finds it taken waits on the loop. Code on the loop that is
not bridged cannot wait for a lock a bridged greenlet holds: :meth:`Lock.acquire` raises
:class:`WouldBlockLoop` there rather than hang every flow.

Long work takes turns: :func:`pause` (called by a world's scans for each object) lets the
loop serve the others once the greenlet has run for :data:`SLICE` seconds since it last
waited, so one request that reads a whole world (a search over 50,000 objects takes most
of a second) delays other sandboxes' requests by a slice, not by its whole run.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Any, Literal, cast

import greenlet

SLICE = 0.002  # seconds a bridged greenlet runs before pause() lets the loop serve others


class WouldBlockLoop(RuntimeError):
    """Code on the event loop's thread, not bridged, wanted a :class:`Lock` a bridged
    greenlet of that loop holds: waiting would stop the loop, and with it the holder."""


class _Bridged(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet :func:`start` runs code in: its parent is whoever switched in last (the
    loop's greenlet), ``since`` when that was. Kept for the next code when its code ends
    (a new greenlet's first switch costs about 8 µs, a kept one's under 1 µs)."""

    since = 0.0


IDLE = 32  # greenlets kept per thread for the next code
_kept = threading.local()

current = greenlet.getcurrent  # who runs now: a bridged greenlet, or a thread's own


def _idle() -> list[_Bridged]:
    idle: list[_Bridged] | None = getattr(_kept, "idle", None)
    if idle is None:
        idle = _kept.idle = []
    return idle


def _work(fn: Callable[[], Any] | None) -> tuple[str, Any]:
    """A bridged greenlet's life: run each code handed to it, tell its parent how it
    ended (``done`` or ``raised``; ``wait`` is :func:`wait`'s), wait for the next."""
    while True:
        assert fn is not None
        try:
            outcome: tuple[str, Any] = ("done", fn())
        except greenlet.GreenletExit:
            raise
        except BaseException as e:  # noqa: BLE001 - handed to the caller, raised there
            outcome = ("raised", e)
        fn = None
        idle = _idle()
        if len(idle) >= IDLE:
            return outcome  # this greenlet ends: its parent gets the outcome
        me = greenlet.getcurrent()
        idle.append(me)
        fn = me.parent.switch(outcome)


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
    return cast(T, current.parent.switch(("wait", awaitable)))


def start[T](fn: Callable[[], T]) -> tuple[Literal[True], T] | tuple[Literal[False],
                                                                    Coroutine[Any, Any, T]]:
    """Run ``fn()`` now, in a greenlet on this thread, up to its first :func:`wait`:
    ``(True, result)`` when it ended without waiting (its exception is raised here), else
    ``(False, rest)``, the coroutine that awaits that wait and drives ``fn`` on to its end
    (the caller must await it, or ``fn`` never ends and keeps what it holds)."""
    idle = _idle()
    g = idle.pop() if idle else _Bridged(_work)
    g.parent = greenlet.getcurrent()
    g.gr_context = contextvars.copy_context()
    g.since = time.perf_counter()
    tag, value = g.switch(fn)
    if tag == "done":
        return True, cast(T, value)
    if tag == "raised":
        raise value
    return False, _drive(g, value)


async def _drive[T](g: _Bridged, step: Any) -> T:
    while True:
        try:
            value = await step
        except BaseException as e:  # noqa: BLE001 - raised inside fn, where it waits
            g.parent, g.since = greenlet.getcurrent(), time.perf_counter()
            tag, step = g.throw(e)
        else:
            g.parent, g.since = greenlet.getcurrent(), time.perf_counter()
            tag, step = g.switch(value)
        if tag == "done":
            return cast(T, step)
        if tag == "raised":
            raise step


async def run[T](fn: Callable[[], T]) -> T:
    """``fn()`` on this loop's thread, each :func:`wait` inside it awaited here. An
    exception of an awaited step is raised inside ``fn`` where it waited; ``fn``'s own
    exception is raised here."""
    done, value = start(fn)
    if done:
        return cast(T, value)
    return await cast(Coroutine[Any, Any, T], value)


def pause() -> None:
    """Under :func:`run`, once this greenlet has run :data:`SLICE` seconds since it last
    waited: let the loop serve what is ready, then go on. Elsewhere nothing."""
    current = greenlet.getcurrent()
    if isinstance(current, _Bridged) and time.perf_counter() - current.since >= SLICE:
        current.parent.switch(("wait", asyncio.sleep(0)))


def turns[I](items: Iterable[I]) -> Iterator[I]:
    """``items``, with a :func:`pause` before each: for a long loop over a whole world's
    objects (a search's matching) that does not go through a world's scans."""
    for item in items:
        pause()
        yield item


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
        self._thread = 0  # the owner's thread
        self._depth = 0

    def acquire(self) -> None:
        me = greenlet.getcurrent()
        if self._owner is me:
            self._depth += 1
            return
        if not self._lock.acquire(blocking=False):
            if isinstance(me, _Bridged):
                delay = 0.0002
                while not self._lock.acquire(blocking=False):
                    wait(asyncio.sleep(delay))
                    delay = min(delay * 2, 0.005)
            else:
                owner = self._owner
                if isinstance(owner, _Bridged) and self._thread == threading.get_ident():
                    raise WouldBlockLoop("this is held by a request waiting on the event "
                                         "loop, which this code runs on: waiting would "
                                         "stop both")
                self._lock.acquire()
        self._owner, self._thread, self._depth = me, threading.get_ident(), 1

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
