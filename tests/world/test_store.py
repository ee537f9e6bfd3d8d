"""The world-store contract, the same for every backend: transactions, scans, forks,
snapshots, restore, reset, delete, diff, TTL and event history."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from guard.errors import NoSuchSnapshot, NoSuchWorld, WorldError, WorldExists
from guard.world import WorldStore


def _fill(store: WorldStore, sandbox: str, n: int, collection: str = "things") -> None:
    w = store.world(sandbox)
    with w.transaction():
        for i in range(n):
            w.put(collection, {"id": f"t{i:05d}", "n": i})


def test_a_transaction_that_raises_leaves_nothing_behind(store: WorldStore) -> None:
    w = store.world("a")
    w.put("things", {"id": "keep", "v": 1})
    with pytest.raises(RuntimeError):
        with w.transaction():
            w.put("things", {"id": "new", "v": 1})
            w.put("things", {"id": "keep", "v": 2})
            w.delete("things", "keep")
            w.next("numbers")
            raise RuntimeError("boom")
    assert w.get("things", "new") is None
    assert w.get("things", "keep") == {"id": "keep", "v": 1}
    assert w.next("numbers") == 1
    assert w.count("things") == 1


def test_a_savepoint_undoes_only_its_own_block(store: WorldStore) -> None:
    w = store.world("a")
    with w.transaction() as changes:
        w.put("things", {"id": "one"})
        with pytest.raises(ValueError):
            with w.savepoint():
                w.put("things", {"id": "two"})
                w.next("c")
                raise ValueError
        assert w.get("things", "two") is None
    assert [c.id for c in changes] == ["one"]
    assert w.next("c") == 1
    assert [o["id"] for o in w.list("things")] == ["one"]


def test_reads_inside_a_transaction_see_its_own_writes(store: WorldStore) -> None:
    w = store.world("a")
    _fill(store, "a", 3)
    with w.transaction():
        w.put("things", {"id": "t00001", "n": 100})
        w.delete("things", "t00000")
        w.put("things", {"id": "late", "n": 3})
        assert [o["id"] for o in w.scan("things")] == ["t00001", "t00002", "late"]
        assert [o["id"] for o in w.scan("things", reverse=True)] == ["late", "t00002",
                                                                      "t00001"]
        assert [o["id"] for o in w.scan("things", after="t00001")] == ["t00002", "late"]
        assert [o["id"] for o in w.scan("things", after="late", reverse=True)] == [
            "t00002", "t00001"]
        assert w.count("things") == 3
        assert w.get("things", "t00001")["n"] == 100
    assert [o["n"] for o in w.list("things")] == [100, 2, 3]


def test_objects_come_out_as_copies(store: WorldStore) -> None:
    w = store.world("a")
    obj = {"id": "x", "tags": ["a"]}
    w.put("things", obj)
    obj["tags"].append("b")
    got = w.get("things", "x")
    got["tags"].append("c")
    assert w.get("things", "x") == {"id": "x", "tags": ["a"]}


def test_an_updated_object_keeps_its_place_and_a_recreated_one_moves_last(
        store: WorldStore) -> None:
    w = store.world("a")
    _fill(store, "a", 3)
    w.put("things", {"id": "t00000", "n": "updated"})
    assert [o["id"] for o in w.list("things")][0] == "t00000"
    w.delete("things", "t00000")
    w.put("things", {"id": "t00000", "n": "again"})
    assert [o["id"] for o in w.list("things")] == ["t00001", "t00002", "t00000"]


def test_scan_pages_from_a_cursor_in_both_directions(store: WorldStore) -> None:
    _fill(store, "a", 50)
    w = store.world("a")
    page = [o["id"] for o, _ in zip(w.scan("things", after="t00010"), range(3), strict=False)]
    assert page == ["t00011", "t00012", "t00013"]
    page = [o["id"] for o, _ in zip(w.scan("things", after="t00010", reverse=True), range(3),
                                     strict=False)]
    assert page == ["t00009", "t00008", "t00007"]
    assert list(w.scan("things", after="no-such-object")) == []


def test_a_fork_is_an_exact_copy_and_then_diverges(store: WorldStore) -> None:
    _fill(store, "a", 20)
    a = store.world("a")
    a.next("invoices")
    store.add_event("a", {"kind": "flow", "rule": "x"})
    info = store.fork("a", "b")
    b = store.world("b")
    assert info.counts == {"things": 20}
    assert b.list("things") == a.list("things")
    assert b.next("invoices") == 2 and a.next("invoices") == 2
    assert [e["rule"] for e in store.events("b")] == ["x"]
    b.put("things", {"id": "t00003", "n": "b"})
    b.delete("things", "t00004")
    a.put("things", {"id": "only-a"})
    assert a.get("things", "t00003")["n"] == 3 and a.get("things", "t00004") is not None
    assert b.get("things", "only-a") is None
    assert a.count("things") == 21 and b.count("things") == 19
    with pytest.raises(WorldExists):
        store.fork("a", "b")
    with pytest.raises(NoSuchWorld):
        store.fork("nobody", "c")


def test_forks_of_forks_stay_independent(store: WorldStore) -> None:
    _fill(store, "root", 5)
    names = ["root"]
    for i in range(12):  # deep enough to merge layers on the way
        store.fork(names[-1], f"f{i}")
        store.world(f"f{i}").put("things", {"id": f"t{i:05d}", "n": f"f{i}"})
        names.append(f"f{i}")
    assert store.world("root").get("things", "t00000")["n"] == 0
    last = store.world("f11")
    assert last.get("things", "t00004")["n"] == "f4"
    assert last.get("things", "t00011")["n"] == "f11"
    assert store.world("f3").get("things", "t00004")["n"] == 4
    assert last.count("things") == 12


def test_ids_after_a_fork_never_collide(store: WorldStore) -> None:
    store.world("a").clock.tick()
    store.fork("a", "b")
    wa, wb = store.world("a"), store.world("b")
    wa.clock.tick()
    wb.clock.tick()
    assert wa.ids.stripe("cus") != wb.ids.stripe("cus")


def test_a_snapshot_is_immutable_and_shared(store: WorldStore) -> None:
    _fill(store, "a", 10)
    snap = store.snapshot("a", id="before")
    store.world("a").put("things", {"id": "t00000", "n": "changed"})
    store.world("a").delete("things", "t00001")
    store.create("c1", snapshot="before")
    store.create("c2", snapshot="before")
    store.world("c1").put("things", {"id": "t00002", "n": "c1"})
    assert store.world("c2").get("things", "t00002")["n"] == 2
    doc = store.export_snapshot("before")
    assert len(doc["collections"]["things"]) == 10
    assert doc["collections"]["things"]["t00000"]["n"] == 0
    assert snap.counts == {"things": 10} and snap.source == "a"
    with pytest.raises(WorldExists):
        store.snapshot("a", id="before")
    with pytest.raises(WorldError):
        store.snapshot("a", id="../../etc/passwd")


def test_the_world_as_json_text_is_the_snapshot_with_each_object_as_stored(
        store: WorldStore) -> None:
    """guard.internal/world answers with it: the committed world, its objects' stored text
    (a lone surrogate a hostile request left stays an escape, not an unencodable str)."""
    w = store.world("a")
    _fill(store, "a", 3)
    w.put("odd \"name\"", {"id": "x1", "s": "\ud800 é \x00"})
    w.next("seq")
    text = w.snapshot_json()
    assert text.isascii()
    assert json.loads(text) == w.snapshot()
    with w.transaction():
        w.put("things", {"id": "pending"})
        assert b"pending" not in w.snapshot_json()  # what is committed
    assert b"pending" in w.snapshot_json()


def test_restore_and_reset(make_store: Callable[..., WorldStore]) -> None:
    initial = {"v": 1, "collections": {"prices": {"price_1": {"id": "price_1"}}}}
    store = make_store(seed=1, initial=initial)
    w = store.world("a")
    assert w.get("prices", "price_1") is not None
    store.snapshot("a", id="s1")
    w.put("things", {"id": "x"})
    version = store.info("a").version
    store.restore("a", "s1")
    assert w.get("things", "x") is None and store.world("a").get("prices", "price_1")
    assert store.info("a").version > version
    store.world("a").put("things", {"id": "y"})
    store.reset("a")
    assert store.world("a").get("things", "y") is None
    assert store.world("a").get("prices", "price_1") is not None
    with pytest.raises(NoSuchSnapshot):
        store.restore("a", "nope")


def test_delete_forgets_the_world_and_its_events(store: WorldStore) -> None:
    _fill(store, "a", 3)
    store.add_event("a", {"kind": "flow"})
    assert store.delete("a") is True
    assert not store.exists("a")
    assert store.events("a") == []
    with pytest.raises(NoSuchWorld):
        store.info("a")
    assert store.world("a").list("things") == []
    assert store.delete("nobody") is False


def test_info_counts_objects_and_bytes_per_collection(store: WorldStore) -> None:
    _fill(store, "a", 4)
    store.world("a").put("other", {"id": "o"})
    info = store.info("a")
    assert info.counts == {"things": 4, "other": 1}
    assert info.bytes["other"] == len('{"id":"o"}')
    assert info.objects == 5 and info.version == 2
    store.update_meta("a", labels={"team": "x"}, token_hash="abc")
    store.update_meta("a", token_hash=None)
    assert store.info("a").meta == {"labels": {"team": "x"}}


def test_diff_since_a_snapshot_and_since_a_version(store: WorldStore) -> None:
    _fill(store, "a", 3)
    store.snapshot("a", id="s")
    v = store.info("a").version
    w = store.world("a")
    w.put("things", {"id": "t00000", "n": 0, "meta": {"plan": "pro"}})
    w.put("things", {"id": "t00001", "n": 10})
    w.delete("things", "t00002")
    w.put("things", {"id": "new", "n": 9})
    w.put("outbox", {"id": "out_000001", "to": ["a@b"]})
    w.put("things", {"id": "gone-again"})
    w.delete("things", "gone-again")
    for since in ("s", v, str(v)):
        d = store.diff("a", since)
        things = d["collections"]["things"]
        assert [o["id"] for o in things["created"]] == ["new"]
        assert [o["id"] for o in things["deleted"]] == ["t00002"]
        assert {c["id"]: c["fields"] for c in things["changed"]} == {
            "t00000": {"meta": {"before": None, "after": {"plan": "pro"}}},
            "t00001": {"n": {"before": 1, "after": 10}}}
        assert [r["id"] for r in d["outbox"]] == ["out_000001"]
    # a world that does not descend from the snapshot is compared whole
    store.create("other", snapshot="s")
    store.restore("other", "s")
    store.world("other").put("things", {"id": "t00001", "n": 5})
    d = store.diff("other", "s")
    assert d["collections"]["things"]["changed"] == [
        {"id": "t00001", "fields": {"n": {"before": 1, "after": 5}}}]
    with pytest.raises(NoSuchSnapshot):
        store.diff("a", "nope")


def test_idle_worlds_expire_after_their_ttl(store: WorldStore) -> None:
    store.create("short", ttl=10)
    store.create("forever")
    last = store.info("short").last_activity
    assert store.expire(now=last + 5) == []
    assert store.expire(now=last + 11) == ["short"]
    assert not store.exists("short") and store.exists("forever")


def test_event_history_pages_by_id(store: WorldStore) -> None:
    for i in range(5):
        assert store.add_event("a", {"kind": "flow", "n": i}) == i + 1
    assert [e["n"] for e in store.events("a", after=2)] == [2, 3, 4]
    assert [e["id"] for e in store.events("a", after=0, limit=2)] == [1, 2]
    assert store.events("b") == []


def test_event_history_keeps_the_last_events_as_given_or_as_audit_lines(
        store: WorldStore) -> None:
    """Events added as dicts and as the audit log's JSON lines (non-ASCII, a lone
    surrogate) read back the same, in order, the last EVENTS_KEEP of them, from any point
    and in pages of any size; a fork has the same history."""
    import json
    import random

    from guard.world.store import EVENTS_KEEP

    rand = random.Random(7)
    n = EVENTS_KEEP + 37
    for i in range(n):
        event = {"kind": "flow", "n": i, "text": "é\udcff"}
        if i % 3:
            line = json.dumps(event, sort_keys=True, ensure_ascii=False).encode(
                "utf-8", "backslashreplace") + b"\n"
            assert store.add_event_line("a", event, line) == i + 1
        else:
            assert store.add_event("a", event) == i + 1
    first = n - EVENTS_KEEP + 1  # the oldest id kept
    for after in [0, 1, first - 1, first, first + 5, n - 9, n - 1, n, n + 3,
                  *(rand.randrange(n + 2) for _ in range(20))]:
        for limit in (1, 7, 8, 9, 100, EVENTS_KEEP):
            got = store.events("a", after=after, limit=limit)
            want = list(range(max(after + 1, first), n + 1))[:limit]
            assert [e["id"] for e in got] == want
            assert all(e == {"id": e["id"], "kind": "flow", "n": e["id"] - 1,
                             "text": "é\udcff"} for e in got)
    store.world("a")
    store.fork("a", "b")
    assert store.events("b", limit=EVENTS_KEEP) == store.events("a", limit=EVENTS_KEEP)


def test_a_journal_kept_open_follows_resets_restores_deletes_and_evictions(
        tmp_path) -> None:
    from guard.world.memory import MemoryStore

    store = MemoryStore(seed=1, state_dir=tmp_path)
    w = store.world("a")
    with w.transaction():
        w.put("things", {"id": "x"})
    store.flush(w)
    sid = store.snapshot("a").id
    store.reset("a")  # the journal file is replaced
    w = store.world("a")
    with w.transaction():
        w.put("things", {"id": "y"})
    store.flush(w)
    assert MemoryStore(seed=1, state_dir=tmp_path).world("a").get("things", "x") is None
    assert MemoryStore(seed=1, state_dir=tmp_path).world("a").get("things", "y") == {"id": "y"}
    store.restore("a", sid)
    w = store.world("a")
    with w.transaction():
        w.put("things", {"id": "z"})
    store.flush(w)
    again = MemoryStore(seed=1, state_dir=tmp_path).world("a")
    assert again.get("things", "x") == {"id": "x"} and again.get("things", "z") == {"id": "z"}
    assert again.get("things", "y") is None
    assert store.evict(0, now=10**10) == ["a"]  # closed; opened again on the next commit
    w = store.world("a")
    with w.transaction():
        w.put("things", {"id": "after-evict"})
    store.flush(w)
    assert MemoryStore(seed=1, state_dir=tmp_path).world("a").get(
        "things", "after-evict") == {"id": "after-evict"}
    store.delete("a")
    assert not (tmp_path / "a.jsonl").exists()
    w = store.world("a")
    with w.transaction():
        w.put("things", {"id": "new"})
    store.flush(w)
    fresh = MemoryStore(seed=1, state_dir=tmp_path).world("a")
    assert fresh.get("things", "new") == {"id": "new"} and fresh.get("things", "x") is None
    store.close()


def test_waiting_for_events_wakes_on_a_new_one(store: WorldStore) -> None:
    async def scenario() -> list[int]:
        waiter = asyncio.ensure_future(store.wait_events("a", 0, 5.0))
        await asyncio.sleep(0.05)
        store.add_event("a", {"kind": "flow"})
        return [e["id"] for e in await waiter]

    assert asyncio.run(scenario()) == [1]


def test_seeded_worlds_are_deterministic(make_store: Callable[..., WorldStore]) -> None:
    def run() -> list[str]:
        w = make_store(seed=42).world("a")
        out = []
        for _ in range(3):
            w.clock.tick()
            out.append(w.ids.stripe("cus"))
            out.append(str(w.clock.timestamp()))
        return out

    assert run() == run()


def test_an_uploaded_snapshot_is_checked_before_anything_is_loaded(store: WorldStore) -> None:
    for bad in ({"v": 2}, {"v": 1, "collections": []}, {"v": 1, "collections": {"c": []}},
                {"v": 1, "collections": {"c": {"x": 1}}},
                {"v": 1, "collections": {}, "counters": {"n": "1"}}):
        with pytest.raises(WorldError):
            store.import_snapshot(bad)  # type: ignore[arg-type]
    info = store.import_snapshot({"v": 1, "collections": {"c": {"x": {"id": "x"}}}},
                                 id="up")
    assert info.counts == {"c": 1}
    store.create("a", snapshot="up")
    assert store.world("a").get("c", "x") == {"id": "x"}


def test_a_lookup_index_maps_keys_to_sandboxes(store: WorldStore) -> None:
    store.index_set("token", "hash-1", "a")
    assert store.index_get("token", "hash-1") == "a"
    assert store.index_get("token", "other") is None
    assert store.index_get("address", "hash-1") is None
    store.index_set("token", "hash-1", None)
    assert store.index_get("token", "hash-1") is None


def test_a_request_that_only_reads_counts_as_activity(store: WorldStore) -> None:
    store.create("a", ttl=10)
    before = store.info("a").last_activity
    w = store.world("a")
    with w.transaction():
        w.get("things", "x")
    assert store.info("a").last_activity >= before
    assert store.expire(now=store.info("a").last_activity + 5) == []


def test_a_journaled_world_from_an_initial_world_keeps_it_across_eviction_and_restart(
        tmp_path) -> None:
    from guard.world.memory import MemoryStore

    initial = {"v": 1, "collections": {"prices": {"price_1": {"id": "price_1", "n": 1}}}}
    store = MemoryStore(seed=1, state_dir=tmp_path, initial=initial)
    w = store.world("a")
    with w.transaction():
        w.put("things", {"id": "x"})
    store.flush(w)
    store.world("reader").get("prices", "price_1")  # read only: no journal is written
    assert store.evict(0, now=10**10) == ["a", "reader"]
    assert not (tmp_path / "reader.jsonl").exists()
    for again in (store, MemoryStore(seed=1, state_dir=tmp_path, initial=initial),
                  MemoryStore(seed=1, state_dir=tmp_path)):
        assert again.world("a").get("prices", "price_1") == {"id": "price_1", "n": 1}
        assert again.world("a").get("things", "x") == {"id": "x"}
