"""Worker 0's console shows the flows every worker of its gateway served.

Nothing new carries them: each worker already puts its sandboxes' events in their event
histories in Redis (the live feed at ``guard.internal`` and the admin API's event
stream), and Redis announces each one on the channel that wakes those streams
(:meth:`~guard.world.redis.RedisStore.watch_events`). Worker 0 listens there too, reads
the announced events of each sandbox after the last it read, and gives the console's
:class:`~guard.console.flows.FlowLog` those another worker of the same gateway wrote
(each worker marks its feed events with the gateway's id and its index:
:meth:`guard.gateway.Seat.mark`). Its own flows the FlowLog has already, from its
recorder; other replicas' (other gateways sharing the Redis) are theirs to show.

What this does not show: a flow of another worker that belongs to no sandbox (refused
before guard knew which: those are not in any event history), and events announced
while the subscription is down (Redis away) until the sandbox's next event, when the
ones still kept (:data:`~guard.world.store.EVENTS_KEEP`) are read. Bodies are cut as
the live feed cuts them (1 KiB, :data:`~guard.internal_host.FEED_BODY_LIMIT`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from guard.console.flows import FlowLog
from guard.errors import WorldError
from guard.gateway import Seat
from guard.internal_host import RING

log = logging.getLogger("guard")

SANDBOXES_KEPT = 10_000  # sandboxes whose last read event is remembered


class RemoteFlows:
    """``run`` (a task of the admin listener) feeds ``flows`` until cancelled."""

    def __init__(self, worlds: Any, flows: FlowLog, seat: Seat) -> None:
        self.worlds = worlds  # a RedisStore: events() and watch_events()
        self.flows = flows
        self.seat = seat
        self.seen: OrderedDict[str, int] = OrderedDict()  # sandbox -> last event id read
        self.due: dict[str, tuple[int, int]] = {}  # sandbox -> (first, last) announced
        self._wake: asyncio.Event | None = None

    def announced(self, sandbox: str, n: int) -> None:
        if n <= self.seen.get(sandbox, 0):
            return
        first, _ = self.due.get(sandbox, (n, n))
        self.due[sandbox] = (min(first, n), n)
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = asyncio.Event()
        watch: Callable[[Callable[[str, int], None]], None] = self.worlds.watch_events
        watch(self.announced)
        while True:
            await self._wake.wait()
            self._wake.clear()
            due, self.due = self.due, {}
            try:  # Redis round trips off the loop every flow shares
                events = await asyncio.to_thread(self._read, due)
            except WorldError as e:
                log.warning("guard: the console misses other workers' flows: %s", e)
                continue
            except Exception:
                log.exception("guard: the console misses other workers' flows")
                continue
            for event in events:
                self.flows.observe(event)

    def _read(self, due: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for sandbox, (first, last) in due.items():
            after = self.seen.get(sandbox, first - 1)
            while after < last:
                events = self.worlds.events(sandbox, after, RING)
                if not events:
                    break
                after = max(after, int(events[-1]["id"]))
                out += [e for e in events if self._theirs(e)]
            self.seen[sandbox] = max(after, self.seen.get(sandbox, 0))
            self.seen.move_to_end(sandbox)
            while len(self.seen) > SANDBOXES_KEPT:
                self.seen.popitem(last=False)
        return out

    def _theirs(self, event: dict[str, Any]) -> bool:
        """Written by another worker of this gateway."""
        return (event.get("gateway") == self.seat.gateway
                and event.get("worker") != self.seat.index)
