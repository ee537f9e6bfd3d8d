"""Where one process sits in a ``guard run --workers N`` gateway.

The supervisor (:mod:`guard.cli.workers`) starts each worker with three variables:
its index, an id of this run of the gateway (random, made once by the supervisor) and,
with ``--admin-listen``, the directory where every worker writes its metrics
(:mod:`guard.sharedmetrics`). A process started any other way has no seat.

>>> Seat.from_env({"GUARD_WORKER": "1", "GUARD_GATEWAY": "ab12"})
Seat(index=1, gateway='ab12', metrics=None)
>>> Seat.from_env({}) is None
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

WORKER_ENV = "GUARD_WORKER"  # the worker's index, 0 ... N-1
GATEWAY_ENV = "GUARD_GATEWAY"  # this run of the gateway (its workers' events carry it)
METRICS_ENV = "GUARD_METRICS_DIR"  # every worker's counters (with --admin-listen)


@dataclass(frozen=True)
class Seat:
    index: int
    gateway: str
    metrics: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Seat | None:
        value = env.get(WORKER_ENV)
        if value is None or not (value.isascii() and value.isdigit()):
            return None
        metrics = env.get(METRICS_ENV)
        return cls(int(value), env.get(GATEWAY_ENV, ""), Path(metrics) if metrics else None)

    def mark(self) -> dict[str, object]:
        """What this worker adds to the events it puts in the live feed, so worker 0's
        console can tell the other workers' flows (and its own) from other replicas'."""
        return {"gateway": self.gateway, "worker": self.index}
