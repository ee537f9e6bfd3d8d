"""The Redis store's per-process object cache (guard.world.redis.RedisWorld): what it
keeps is either current or checked at the commit, so it saves round trips and never
serves an old value, whatever other replicas do and however full it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from guard.world import lua
from guard.world import redis as redis_store
from guard.world.redis import RedisStore
from tests.redis_server import RedisServer


@pytest.fixture
def two(redis_server: RedisServer) -> Iterator[tuple[RedisStore, RedisStore]]:
    """Two replicas on one Redis and one key prefix."""
    url = redis_server.prefixed()
    a, b = RedisStore(url), RedisStore(url)
    yield a, b
    a.close()
    b.close()


def test_updates_of_a_cached_object_lose_nothing_once_the_cache_is_full(
        two: tuple[RedisStore, RedisStore], monkeypatch: pytest.MonkeyPatch) -> None:
    # A full cache took no new entries, and so kept the value an object had when it was
    # read rather than the one its commit wrote: the next update read that old value and,
    # with no other writer in between, committed on top of it (3 increments gave 1).
    monkeypatch.setattr(redis_store, "CACHE_MAX", 8)
    a, b = two
    w = a.world("s")
    w.put("things", {"id": "x", "n": 0})
    for i in range(12):  # more objects than the cache holds
        w.put("others", {"id": f"o{i}"})
    for _ in range(3):
        def bump(_: object) -> None:
            cur = w.get("things", "x")
            assert cur is not None
            w.put("things", {"id": "x", "n": cur["n"] + 1})
        w.atomically(bump)
    assert w.get("things", "x") == {"id": "x", "n": 3}
    assert b.world("s").get("things", "x") == {"id": "x", "n": 3}


def _scans(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The collections ``store`` sends a SCAN script for, from now on."""
    sent: list[str] = []
    run = store._run

    def counting(source: str, *args: Any) -> Any:
        if source == lua.SCAN:
            sent.append(str(args[1]))
        return run(source, *args)

    monkeypatch.setattr(store, "_run", counting)
    return sent


def test_another_replicas_commit_keeps_the_pages_of_collections_it_did_not_touch(
        two: tuple[RedisStore, RedisStore], monkeypatch: pytest.MonkeyPatch) -> None:
    # The shape of a Stripe create served by two replicas: each lists the webhook
    # endpoints (unchanged) and writes customers. The other replica's commits must not
    # send this one's next listing of the endpoints to Redis again.
    a, b = two
    wa, wb = a.world("s"), b.world("s")
    wa.put("endpoints", {"id": "we_1"})

    def create(w: Any, n: int) -> list[str]:
        def run(_: object) -> list[str]:
            w.put("customers", {"id": f"cus_{n}"})
            return [e["id"] for e in w.list("endpoints")]
        return w.atomically(run)  # type: ignore[no-any-return]

    assert create(wa, 0) == ["we_1"]  # the page is cached now
    sent = _scans(a, monkeypatch)
    for n in range(1, 6):
        assert create(wb, 100 + n) == ["we_1"]  # the other replica commits in between
        assert create(wa, n) == ["we_1"]
    assert sent == []  # every listing came from the cache, checked by its commit
    assert {c["id"] for c in wb.list("customers")} == {
        *(f"cus_{n}" for n in range(6)), *(f"cus_{100 + n}" for n in range(1, 6))}


def test_a_kept_page_of_a_collection_another_replica_changed_is_never_served_stale(
        two: tuple[RedisStore, RedisStore]) -> None:
    a, b = two
    wa, wb = a.world("s"), b.world("s")
    wa.put("endpoints", {"id": "we_1"})

    def listing(w: Any) -> list[str]:
        def run(_: object) -> list[str]:
            w.put("customers", {"id": "cus_x"})
            return [e["id"] for e in w.list("endpoints")]
        return w.atomically(run)  # type: ignore[no-any-return]

    assert listing(wa) == ["we_1"]
    wb.put("endpoints", {"id": "we_2"})  # the collection a's cached page is of
    assert listing(wa) == ["we_1", "we_2"]  # the commit caught it; the retry read afresh
    wb.delete("endpoints", "we_1")
    assert [e["id"] for e in wa.list("endpoints")] == ["we_2"]  # a read-only one too
    wb.put("endpoints", {"id": "we_1", "back": True})
    assert wa.get("endpoints", "we_1") == {"id": "we_1", "back": True}


def test_a_request_that_only_reads_keeps_the_cache(
        two: tuple[RedisStore, RedisStore], monkeypatch: pytest.MonkeyPatch) -> None:
    # A read-only commit leaves the version as it was: that is no sign of another
    # writer, and dropped the whole cache before every next request.
    a, _ = two
    w = a.world("s")
    w.put("endpoints", {"id": "we_1"})

    def read(_: object) -> list[str]:
        return [e["id"] for e in w.list("endpoints")]

    assert w.atomically(read) == ["we_1"]
    sent = _scans(a, monkeypatch)
    for _ in range(3):
        assert w.atomically(read) == ["we_1"]
    assert sent == []


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("cache_max", [6, 4096])
def test_three_replicas_in_random_turns_always_read_what_was_last_written(
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, seed: int,
        cache_max: int) -> None:
    # Reads, read-modify-writes, creates, deletes, listings and counts of one sandbox,
    # each by a replica picked at random, checked against a plain dict after every step:
    # whatever each replica's cache holds (full, or holding pages and objects across the
    # others' commits), no answer may be older than the last write.
    import random

    monkeypatch.setattr(redis_store, "CACHE_MAX", cache_max)
    url = redis_server.prefixed()
    stores = [RedisStore(url) for _ in range(3)]
    worlds = [s.world("s") for s in stores]
    model: dict[str, dict[str, dict[str, Any]]] = {"a": {}, "b": {}}
    rnd = random.Random(seed)
    w = worlds[0]
    try:
        for step in range(600):
            if rnd.random() < 0.4:  # runs of one replica, then another: both orders matter
                w = rnd.choice(worlds)
            c = rnd.choice(["a", "b"])
            ids = sorted(model[c])
            op = rnd.choice(["get", "bump", "bump", "bump", "create", "create", "delete",
                             "list", "count", "mixed"])
            if op == "get" and ids:
                i = rnd.choice(ids)
                got = w.atomically(lambda _, c=c, i=i, w=w: w.get(c, i))  # a retrieve
                assert got == model[c][i], (step, op)
            elif op == "bump" and ids:
                i = rnd.choice(ids)

                def bump(_: object, c: str = c, i: str = i, w: Any = w) -> None:
                    cur = w.get(c, i)
                    w.put(c, {**cur, "n": cur["n"] + 1})
                w.atomically(bump)
                model[c][i] = {**model[c][i], "n": model[c][i]["n"] + 1}
            elif op == "create":
                i = f"{c}{step:04d}"  # as a request makes it: no read first (blind)
                w.atomically(lambda _, c=c, i=i, w=w: w.put(c, {"id": i, "n": 0}))
                model[c][i] = {"id": i, "n": 0}
            elif op == "delete" and ids:
                i = rnd.choice(ids)  # (a bare delete may conflict: atomically retries)
                assert w.atomically(lambda _, c=c, i=i, w=w: w.delete(c, i))
                del model[c][i]
            elif op == "list":
                got = w.atomically(lambda _, c=c, w=w: w.list(c))
                assert sorted(got, key=lambda o: o["id"]) == [model[c][i] for i in ids], (
                    step, op)
            elif op == "count":
                assert w.atomically(lambda _, c=c, w=w: w.count(c)) == len(ids), (step, op)
            elif op == "mixed" and ids:
                # a listing of one collection and a write to the other in one transaction
                other = "b" if c == "a" else "a"
                j = f"{other}{step:04d}"

                def mixed(_: object, c: str = c, w: Any = w, j: str = j,
                          other: str = other) -> list[dict[str, Any]]:
                    seen = w.list(c)
                    w.put(other, {"id": j, "n": len(seen)})
                    return seen
                seen = w.atomically(mixed)
                assert sorted(seen, key=lambda o: o["id"]) == [model[c][i] for i in ids]
                model[other][j] = {"id": j, "n": len(ids)}
        for w in worlds:
            for c in model:
                assert sorted(w.list(c), key=lambda o: o["id"]) == [
                    model[c][i] for i in sorted(model[c])]
    finally:
        for s in stores:
            s.close()
