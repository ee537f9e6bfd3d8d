"""Deliveries due later (Stripe webhooks): a queue in the world store, so that any live
replica delivers them, not only the one that answered the request.

A :class:`Delivery` is queued with the time it is due. A replica *claims* the due ones:
each claim is a lease with an expiry (the job's due time moves to ``now + lease``) and a
token of its own, taken atomically (a Lua script in Redis), so two replicas never claim
one job at the same moment. The claimer then *finishes* the job, or *retries* it at a
later time; both need the claim's token, so a replica whose lease ran out meanwhile
changes nothing. A replica that dies holding a claim loses it when the lease expires:
the job is due again and another replica claims it. Each delivery is made once while
replicas live; after a crash mid-delivery it may be made twice (at least once), with
the same event id, which is how Stripe's receivers deduplicate.

>>> q = MemoryQueue()
>>> q.add([Delivery("stripe.webhook", "s1", "evt_1", "we_1")], due=10.0)
>>> q.claim(now=5.0, lease=60.0, limit=10)
[]
>>> [(job.event, job.attempt) for job, _ in q.claim(now=10.0, lease=60.0, limit=10)]
[('evt_1', 0)]
>>> q.claim(now=11.0, lease=60.0, limit=10)  # claimed: not due again until the lease ends
[]
>>> [job.event for job, _ in q.claim(now=71.0, lease=60.0, limit=10)]  # a dead claimer's
['evt_1']
"""

from __future__ import annotations

import heapq
import json
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

LEASE = 60.0  # seconds a claim lasts: longer than a delivery may take (webhooks.TIMEOUT x 3)


@dataclass(frozen=True)
class Delivery:
    """One event for one endpoint of one world, with what guard knew when it was queued:
    the sandbox client's address (where "localhost" is) and the hosts it may reach."""

    kind: str  # what delivers it: "stripe.webhook"
    world: str
    event: str
    endpoint: str
    sandbox: str = ""  # the sandbox whose request caused it (its audit events name it)
    client: str = ""
    allow: tuple[str, ...] = ()
    attempt: int = 0  # attempts made so far
    queued: float = 0.0  # when it was first queued (Unix time)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """One job per (kind, world, event, endpoint): queueing it again changes nothing."""
        return json.dumps([self.kind, self.world, self.event, self.endpoint],
                          separators=(",", ":"))

    def dumps(self) -> str:
        return json.dumps({**asdict(self), "allow": list(self.allow)},
                          separators=(",", ":"))

    @staticmethod
    def loads(raw: str) -> Delivery:
        d = json.loads(raw)
        return Delivery(d["kind"], d["world"], d["event"], d["endpoint"],
                        d.get("sandbox", ""), d.get("client", ""),
                        tuple(d.get("allow") or ()), int(d.get("attempt", 0)),
                        float(d.get("queued", 0.0)), dict(d.get("extra") or {}))

    def next_attempt(self) -> Delivery:
        return replace(self, attempt=self.attempt + 1)


Claim = tuple[Delivery, str]  # the job and the claim's token


class DeliveryQueue(ABC):
    """The deliveries of every world of a store (``WorldStore.deliveries``)."""

    def __init__(self) -> None:
        self.on_add: Callable[[float], None] | None = None  # wakes this process's deliverer

    def add(self, jobs: Sequence[Delivery], due: float) -> None:
        """Queue ``jobs`` (a job already queued keeps its place and attempts)."""
        if jobs:
            self._add(jobs, due)
            if self.on_add is not None:
                self.on_add(due)

    @abstractmethod
    def _add(self, jobs: Sequence[Delivery], due: float) -> None: ...

    @abstractmethod
    def claim(self, now: float, lease: float, limit: int) -> list[Claim]:
        """Up to ``limit`` jobs due at ``now`` (earliest first), each leased until
        ``now + lease`` to the token returned with it."""

    @abstractmethod
    def finish(self, job: Delivery, token: str) -> bool:
        """Remove a claimed job; False when the claim is no longer ours (it expired and
        another replica claimed the job)."""

    @abstractmethod
    def retry(self, job: Delivery, token: str, due: float) -> bool:
        """Put a claimed job back, due at ``due``, as ``job`` says now (its attempts);
        False when the claim is no longer ours."""

    @abstractmethod
    def pending(self) -> list[tuple[Delivery, float]]:
        """Every queued job and when it is due (claimed ones: when the lease ends)."""

    @staticmethod
    def token() -> str:
        return secrets.token_hex(8)


class MemoryQueue(DeliveryQueue):
    """The in-process store's queue: the same interface, in this process's memory (gone
    when the process ends: a replica of its own has no one to hand its work to)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[Delivery, float, str]] = {}  # id -> job, due, token
        self._heap: list[tuple[float, int, str]] = []
        self._n = 0

    def _push(self, job_id: str, due: float) -> None:
        self._n += 1
        heapq.heappush(self._heap, (due, self._n, job_id))

    def _add(self, jobs: Sequence[Delivery], due: float) -> None:
        with self._lock:
            for job in jobs:
                if job.id not in self._jobs:
                    self._jobs[job.id] = (job, due, "")
                    self._push(job.id, due)

    def claim(self, now: float, lease: float, limit: int) -> list[Claim]:
        out: list[Claim] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now and len(out) < limit:
                due, _, job_id = heapq.heappop(self._heap)
                entry = self._jobs.get(job_id)
                if entry is None or entry[1] != due:  # finished, or moved (a stale entry)
                    continue
                token = self.token()
                self._jobs[job_id] = (entry[0], now + lease, token)
                self._push(job_id, now + lease)
                out.append((entry[0], token))
        return out

    def finish(self, job: Delivery, token: str) -> bool:
        with self._lock:
            entry = self._jobs.get(job.id)
            if entry is None or entry[2] != token:
                return False
            del self._jobs[job.id]
            return True

    def retry(self, job: Delivery, token: str, due: float) -> bool:
        with self._lock:
            entry = self._jobs.get(job.id)
            if entry is None or entry[2] != token:
                return False
            self._jobs[job.id] = (job, due, "")
            self._push(job.id, due)
            return True

    def pending(self) -> list[tuple[Delivery, float]]:
        with self._lock:
            return sorted(((job, due) for job, due, _ in self._jobs.values()),
                          key=lambda p: p[1])
