"""The deliverer: a service (``running``/``done``, like the SMTP sink) that makes the
deliveries queued in the world store (:mod:`guard.world.deliveries`): Stripe webhooks.

Every replica runs one. It claims the jobs that are due, a few at a time, with a lease,
makes each (:func:`guard.providers.stripe.webhooks.attempt`), then finishes it or puts it
back for a retry, and writes one audit event per attempt (``guard.webhook-delivery``, in
the sandbox's live feed too). It wakes when this process queues a job and otherwise
looks every :data:`POLL` seconds, so a job another replica queued, or a retry falling
due, waits at most that long. With Redis the store calls run in threads, never on the
event loop.

On SIGTERM (:meth:`Deliverer.drain`) it stops claiming when the store is shared (the
other replicas deliver the rest), and with the in-process store goes on delivering what
is due until the drain's deadline; either way the attempts under way may finish until
the deadline, and a claim still held then is put back due at once, so another replica
(or this one's next start, with Redis) makes it without waiting for the lease to end.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from guard.audit.recorder import Recorder
from guard.audit.redact import Redactor
from guard.providers.stripe import webhooks
from guard.world import bridge
from guard.world.deliveries import LEASE, Delivery
from guard.world.store import WorldStore

log = logging.getLogger("guard")
T = TypeVar("T")

POLL = 0.5  # seconds between looks at the queue when nothing wakes the deliverer
BATCH = 16  # jobs claimed at once, and at most this many attempts under way
RULE = "guard.webhook-delivery"
KINDS = {webhooks.KIND: webhooks.attempt}


class Deliverer:
    def __init__(self, store: WorldStore, recorder: Recorder, redactor: Redactor,
                 retries: Sequence[float], *, lease: float = LEASE) -> None:
        self.store = store
        self.recorder = recorder
        self.redactor = redactor
        self.retries = tuple(retries)
        self.lease = lease
        self.failure: BaseException | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy: dict[asyncio.Task[None], tuple[Delivery, str]] = {}
        self._claiming = True
        self._deadline: float | None = None  # loop time: the drain ends

    async def _off(self, fn: Callable[[], T]) -> T:
        if self.store.blocking:
            return await asyncio.to_thread(fn)
        return await bridge.run(fn)  # a world a request holds is waited for on the loop

    # the service

    def running(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()

        def woken(_due: float) -> None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop has closed (shutting down)
                pass

        self.store.deliveries.on_add = woken
        self._task = loop.create_task(self._run())

    async def done(self) -> None:
        self._claiming = False
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._release(list(self._busy))
        self.store.deliveries.on_add = None

    async def drain(self, deadline: float) -> None:
        """SIGTERM: see the module's docstring. ``deadline`` is in loop time."""
        loop = asyncio.get_running_loop()
        self._deadline = deadline
        if self.store.blocking:
            self._claiming = False
        elif self._wake is not None:
            self._wake.set()
        while loop.time() < deadline and (self._busy or (self._claiming and self._due())):
            await asyncio.sleep(0.05)
        self._claiming = False
        await self._release(list(self._busy))
        if not self.store.blocking:
            left = len(self.store.deliveries.pending())
            if left:
                log.warning("guard: %d webhook deliveries not made (the in-process store "
                            "keeps them in this process only)", left)

    def _due(self) -> bool:
        pending = self.store.deliveries.pending()
        return bool(pending) and pending[0][1] <= time.time()

    # the work

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            room = BATCH - len(self._busy)
            claims: list[tuple[Delivery, str]] = []
            if self._claiming and room > 0:
                try:
                    claims = await self._off(functools.partial(
                        self.store.deliveries.claim, time.time(), self.lease, room))
                except Exception as e:  # Redis away: the jobs wait there
                    log.warning("guard: cannot claim webhook deliveries: %s", e)
            for job, token in claims:
                task = asyncio.get_running_loop().create_task(self._one(job, token))
                self._busy[task] = (job, token)
                task.add_done_callback(self._finished)
            if claims and len(claims) == room:
                continue  # more may be due
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self._pause())
            except TimeoutError:
                pass

    def _pause(self) -> float:
        if self.store.blocking:
            return POLL
        pending = self.store.deliveries.pending()  # in memory: sleep until the next is due
        if not pending:
            return POLL * 20
        return max(0.0, min(POLL * 20, pending[0][1] - time.time()))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._busy.pop(task, None)
        if self._wake is not None:
            self._wake.set()

    async def _one(self, job: Delivery, token: str) -> None:
        deliver = KINDS.get(job.kind)
        queue = self.store.deliveries
        try:
            if deliver is None:
                raise ValueError(f"no deliverer for {job.kind!r}")
            done = await deliver(self.store, job, self.retries, self._off)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # Redis away, a broken world: counts as a failed attempt
            log.warning("guard: webhook delivery of %s failed: %s", job.event, e)
            n = job.attempt + 1
            retry_at = time.time() + self.retries[n - 1] if n <= len(self.retries) else None
            done = webhooks.Attempted(None, retry_at, f"failed: {type(e).__name__}: {e}")
        nxt = job.next_attempt()
        retry_at = done.retry_at
        try:
            if retry_at is not None:
                kept = await self._off(lambda: queue.retry(nxt, token, retry_at))
            else:
                kept = await self._off(lambda: queue.finish(job, token))
        except Exception as e:
            log.warning("guard: webhook delivery of %s not settled: %s", job.event, e)
            kept = False
        if not kept:
            log.warning("guard: the claim on webhook delivery %s had expired; another "
                        "replica may deliver it again", job.event)
        self._audit(job, done.record, done.why, done.retry_at)

    async def _release(self, held: list[asyncio.Task[None]]) -> None:
        """Claims of attempts not finished by now are put back, due at once (a claim the
        attempt settled meanwhile is no longer the token's: putting it back does nothing)."""
        claims = [self._busy[t] for t in held if t in self._busy]
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        for job, token in claims:
            try:
                await self._off(functools.partial(self.store.deliveries.retry, job, token,
                                                  time.time()))
            except Exception as e:
                log.warning("guard: webhook delivery %s left to its lease: %s", job.event, e)

    def _audit(self, job: Delivery, record: dict[str, Any] | None, why: str,
               retry_at: float | None) -> None:
        url = self.redactor.text(record["url"]) if record is not None else ""
        status = record["status"] if record is not None else None
        try:
            self.recorder.system(
                RULE, "deliver", f"{job.kind} {job.event} to {job.endpoint}: {why}",
                sandbox=job.sandbox, url=url, status=status,
                upstream=record is not None and record["delivered_to"] is not None,
                delivery={"kind": job.kind, "world": job.world, "event": job.event,
                          "endpoint": job.endpoint, "attempt": job.attempt + 1,
                          "delivered_to": record["delivered_to"] if record else None,
                          "error": self.redactor.text(record["error"])
                          if record is not None and record["error"] else None,
                          "next_retry_at": retry_at})
        except Exception as e:  # the log cannot be written: the world has the record
            log.error("guard: webhook delivery of %s not audited: %s", job.event, e)
