"""Requests' simulations as greenlets on the loop, one request of a sandbox at a time.

guard's addons and the admin API share one asyncio loop, and the world API is synchronous
(handlers read and commit with plain calls). The proxy runs each request's simulation as
a greenlet on the loop (:mod:`guard.world.bridge`): with the Redis store its round trips
are awaited there, so the loop serves TLS handshakes, allowed traffic, the admin listener
and other sandboxes' requests while Redis answers (or does not), and a request costs no
thread hop. With either store a request that reads much of its world (a search, a long
list) pauses every :data:`guard.world.bridge.SLICE` seconds for the others, so one
sandbox's heavy requests cannot hold every other sandbox's. A request that never waits
(most requests on the in-process store) runs to its end at once: :meth:`Offload.start`.
(Identity on Redis needs one short read, the registry's version, awaited the same way:
:meth:`guard.sandbox.shared.SharedRegistry.view_async`.)

Requests of one key (the sandbox) run one at a time and in arrival order, so a busy or
stalled sandbox holds only its own requests; each world also guards its own transactions
with a lock (:class:`guard.world.store.World`), since a request's world is not always
named by its sandbox. Feed events are added one after another, in the order they were
written to the audit log.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, cast

from guard.request import Request
from guard.world import bridge

T = TypeVar("T")


def turn(req: Request) -> str:
    """The key a request's simulation takes turns by: its sandbox (or, not proven yet,
    its client address)."""
    return "sandbox:" + (req.sandbox or req.client)


class Offload:
    def __init__(self) -> None:
        # a key's turn is taken while it is in here; its calls waiting, in arrival order
        self._turns: dict[str, deque[asyncio.Future[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[tuple[Callable[[], None], asyncio.Future[None]]] = deque()
        self._feeding: asyncio.Task[None] | None = None
        self._closed = False

    def start(self, key: str | None, fn: Callable[[], T]) -> tuple[Literal[True], T] | \
            tuple[Literal[False], Awaitable[T]]:
        """``fn()`` on the loop, as :meth:`call` runs it; when no earlier call of ``key``
        is still running it starts at once, and ``(True, result)`` is its result if it
        ended without waiting. Else ``(False, pending)``: await ``pending`` for it."""
        loop = self._loop = asyncio.get_running_loop()
        if key is not None and key in self._turns:
            return False, self.call(key, fn)
        done, value = bridge.start(fn)
        if done:
            return True, cast(T, value)
        task = loop.create_task(cast(Any, value))
        if key is not None:
            self._turns[key] = deque()
            task.add_done_callback(lambda _: self._release(key))
        return False, asyncio.shield(task)

    async def call(self, key: str | None, fn: Callable[[], T]) -> T:
        """``fn()`` on the loop (:func:`guard.world.bridge.run`), after every earlier call
        with the same ``key`` has ended (no key: at once).

        ``fn`` runs to its end even when the awaiting flow is cancelled meanwhile (its
        transaction is not cut half-way), and the turn is held until then, so two calls of
        one key never overlap."""
        loop = self._loop = asyncio.get_running_loop()
        if key is None:
            return await asyncio.shield(loop.create_task(bridge.run(fn)))
        await self._take(key)
        try:
            task = loop.create_task(bridge.run(fn))
        except BaseException:
            self._release(key)
            raise
        task.add_done_callback(lambda _: self._release(key))
        return await asyncio.shield(task)

    async def _take(self, key: str) -> None:
        waiting = self._turns.get(key)
        if waiting is None:
            self._turns[key] = deque()
            return
        assert self._loop is not None
        turn = self._loop.create_future()
        waiting.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():  # handed the turn as it was cancelled
                self._release(key)
            else:
                try:
                    waiting.remove(turn)
                except ValueError:
                    pass
            raise

    def _release(self, key: str) -> None:
        """Hand ``key``'s turn to its next waiting call, or free it."""
        waiting = self._turns[key]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._turns[key]

    def feed(self, fn: Callable[[], None]) -> asyncio.Future[None] | None:
        """``fn()`` after every earlier ``feed`` call, on the loop (bridged): the future
        that tells when it ran, when called on the loop; from another thread it is queued
        the same way and nothing waits for it. Before the loop is known, or once closed,
        ``fn`` runs at once, blocking."""
        loop = self._loop
        if loop is None or self._closed or loop.is_closed():
            fn()
            return None
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if not on_loop:
            loop.call_soon_threadsafe(self._enqueue, fn)
            return None
        return self._enqueue(fn)

    def _enqueue(self, fn: Callable[[], None]) -> asyncio.Future[None]:
        assert self._loop is not None
        done: asyncio.Future[None] = self._loop.create_future()
        self._queue.append((fn, done))
        if self._feeding is None or self._feeding.done():
            self._feeding = self._loop.create_task(self._feed_all())
        return done

    async def _feed_all(self) -> None:
        while self._queue:
            fn, done = self._queue.popleft()
            try:
                await bridge.run(fn)
            except asyncio.CancelledError:  # closing: close() adds the ones still queued
                done.cancel()
                raise
            except Exception as e:  # fn logs its own failures: this is a bug
                if not done.done():
                    done.set_exception(e)
            else:
                if not done.done():
                    done.set_result(None)

    def close(self) -> None:
        """Add the feed events still queued (blocking: the loop is stopping), in order."""
        self._closed = True
        if self._feeding is not None and not self._feeding.done():
            self._feeding.cancel()
        while self._queue:
            fn, done = self._queue.popleft()
            try:
                fn()
            finally:
                if not done.done():
                    done.set_result(None)
