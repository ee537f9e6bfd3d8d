"""World-store tests run against every backend: ``store`` is a fresh store of each kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from guard.world import MemoryStore, WorldStore
from guard.world.redis import RedisStore

BACKENDS = ["memory", "redis", "cluster"]  # cluster: a three-node Redis Cluster


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[..., WorldStore]]:
    """A factory of fresh stores of one backend: ``make_store(seed=1, initial=...)``."""
    made: list[WorldStore] = []
    server = (request.getfixturevalue("redis_server") if request.param == "redis" else
              request.getfixturevalue("redis_cluster") if request.param == "cluster" else None)

    def make(**kwargs: Any) -> WorldStore:
        store: WorldStore = (RedisStore(server.prefixed(), **kwargs) if server is not None
                             else MemoryStore(**kwargs))
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., WorldStore]) -> WorldStore:
    return make_store(seed=1)
