"""World-store work off the event loop, for stores that wait on the network (Redis).

guard's addons and the admin API share one asyncio loop. The Redis client is a blocking
one (the optimistic transactions are plain Python around Lua scripts), so a Redis round
trip made on the loop holds every other flow of the process still: TLS handshakes,
allowed traffic, the admin listener, other sandboxes' requests. With a store whose
``blocking`` is true the proxy runs simulation and the live-feed publish in a small
thread pool instead, and the loop stays free while Redis answers (or does not). (Identity
needs one short read, the registry's version: it awaits a non-blocking client on the loop,
see :meth:`guard.sandbox.shared.SharedRegistry.view_async`, which costs no thread hop.)

Requests of one key (the sandbox) run one at a time and in arrival order, so a busy or
stalled sandbox occupies one thread, not the pool; each world also guards its own
transactions with a lock (:class:`guard.world.store.World`), since a request's world is
not always named by its sandbox. Feed events go through one thread of their own, in the
order they were written to the audit log.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
THREADS = 8  # requests waiting on Redis at once per process (more queue per sandbox)


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Offload:
    def __init__(self, threads: int = THREADS) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, "guard-store")
        self._feed = concurrent.futures.ThreadPoolExecutor(1, "guard-feed")
        self._turns: dict[str, _Turn] = {}

    async def call(self, key: str | None, fn: Callable[[], T]) -> T:
        """``fn()`` in the pool, after every earlier call with the same ``key`` has ended
        (no key: at once).

        The turn is held until ``fn`` has returned in its thread, even when the awaiting
        flow is cancelled meanwhile, so two calls of one key never overlap."""
        loop = asyncio.get_running_loop()
        if key is None:
            return await asyncio.wrap_future(self._pool.submit(fn))
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = _Turn()
        turn.users += 1
        try:
            await turn.lock.acquire()
        except BaseException:
            self._leave(key, turn)
            raise

        def release(_: Any) -> None:
            turn.lock.release()
            self._leave(key, turn)

        try:
            future = self._pool.submit(fn)
        except BaseException:
            release(None)
            raise
        future.add_done_callback(lambda f: _soon(loop, release, f))
        return await asyncio.wrap_future(future)

    def _leave(self, key: str, turn: _Turn) -> None:
        turn.users -= 1
        if turn.users == 0 and self._turns.get(key) is turn:
            del self._turns[key]

    def feed(self, fn: Callable[[], None]) -> concurrent.futures.Future[None]:
        """``fn()`` in the feed's one thread, after every earlier ``feed`` call."""
        return self._feed.submit(fn)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._feed.shutdown(wait=True)


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[[Any], None], arg: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, arg)
    except RuntimeError:  # the loop is closed (shutdown): nobody waits for the turn
        pass
