"""Sandbox clocks: real time, or (with ``--seed``) a virtual clock for byte-identical runs."""

from __future__ import annotations

import time
from datetime import UTC, datetime

# 2026-01-01T00:00:00Z: where virtual clocks start unless told otherwise.
VIRTUAL_EPOCH = 1_767_225_600


class Clock:
    """Real wall-clock time when ``start`` is None; otherwise a virtual clock that starts at
    ``start`` and advances one second each time :meth:`tick` is called (once per
    simulated request), so the same requests always see the same times."""

    def __init__(self, start: int | None = None) -> None:
        self._virtual = start is not None
        self._now = float(start or 0)

    @property
    def virtual(self) -> bool:
        return self._virtual

    def tick(self) -> None:
        if self._virtual:
            self._now += 1

    def timestamp(self) -> int:
        return int(self._now if self._virtual else time.time())

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now if self._virtual else time.time(), UTC)

    def state(self) -> float:
        return self._now

    def restore(self, value: float) -> None:
        if self._virtual:
            self._now = value
