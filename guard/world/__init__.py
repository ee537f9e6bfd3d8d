"""The per-sandbox world: objects created by simulated calls, kept for later calls.

:func:`open_store` picks the backend: in this process (the default) or Redis
(``--store redis://HOST:PORT/DB``), shared by every guard worker and replica.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guard.errors import WorldError
from guard.world.memory import MemoryStore
from guard.world.store import Change, SnapshotInfo, World, WorldInfo, WorldStore

__all__ = ["Change", "MemoryStore", "SnapshotInfo", "World", "WorldInfo", "WorldStore",
           "open_store"]


def open_store(url: str | None = None, *, seed: int | None = None,
               state_dir: Path | None = None,
               initial: dict[str, Any] | None = None) -> WorldStore:
    """The world store named by ``url``: None or ``memory:`` for in-process, or
    ``redis://HOST:PORT/DB`` (also ``rediss://`` and ``unix://``)."""
    if url is None or url in ("", "memory", "memory:"):
        return MemoryStore(seed=seed, state_dir=state_dir, initial=initial)
    if url.startswith(("redis://", "rediss://", "unix://")):
        if state_dir is not None:
            raise WorldError("--state journals the in-process store; a Redis store keeps "
                             "worlds in Redis (use Redis persistence instead)")
        from guard.world.redis import RedisStore

        store: WorldStore = RedisStore(url, seed=seed, initial=initial)
        return store
    raise WorldError(f"unknown world store {url!r}: use memory: or redis://HOST:PORT/DB")
