"""The in-process world store (the default): worlds in this process's memory, shared
copy-on-write, optionally journaled to disk (``guard run --state DIR``).

A world's objects live in a stack of *layers*. The top layer takes the world's writes;
the layers under it are frozen and may be shared with snapshots and other worlds. A
snapshot or a fork freezes the top layer (O(1)) and gives each world a new empty one, so
a fork of a 10,000-object world copies nothing. A read looks an object up from the top
down; frozen layers are merged when the one above grows to half the size of the one
below, so the stack stays about log2(objects) deep.

Every object carries the sequence number of its creation; each layer lists the objects
created in it in that order, and layers higher up were created later, so a scan in
creation order walks the layers bottom to top (and the other way for newest first)
without sorting or copying a collection.

>>> store = MemoryStore(seed=1)
>>> with store.world("a").transaction():
...     _ = store.world("a").put("customers", {"id": "cus_1", "name": "Ann"})
>>> _ = store.fork("a", "b")
>>> _ = store.world("b").put("customers", {"id": "cus_1", "name": "Bob"})
>>> store.world("a").get("customers", "cus_1")["name"], store.world("b").get(
...     "customers", "cus_1")["name"]
('Ann', 'Bob')
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import json
import os
import secrets
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

from guard.errors import NoSuchSnapshot, NoSuchWorld, WorldError, WorldExists
from guard.world.deliveries import MemoryQueue
from guard.world.diff import diff
from guard.world.store import (
    CHANGELOG_KEEP,
    EVENTS_KEEP,
    Conflict,
    SnapshotInfo,
    Txn,
    World,
    WorldInfo,
    WorldStore,
    check_snapshot,
    check_snapshot_id,
    dumps,
)

Entry = tuple[int, str | None]  # (creation sequence number, JSON text or None: deleted)

OPEN_JOURNALS = 64  # --state journals kept open (those of the sandboxes active lately)
EVENT_BLOCK = 8  # events compressed together in a world's event history
EVENT_BLOCKS = -(-EVENTS_KEEP // EVENT_BLOCK)  # blocks that hold EVENTS_KEEP events


class Layer:
    """Objects by collection and id, and the ids created here in creation order."""

    __slots__ = ("entries", "order", "size", "dead")

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {}
        self.order: dict[str, list[tuple[int, str]]] = {}
        self.size = 0
        self.dead = 0  # order entries whose object was deleted (top layer only)


def _merge(lower: Layer, upper: Layer, *, bottom: bool) -> Layer:
    """A new layer with ``upper`` over ``lower`` (both stay as they are: others share them)."""
    out = Layer()
    for name in lower.entries.keys() | upper.entries.keys():
        merged = {**lower.entries.get(name, {}), **upper.entries.get(name, {})}
        if bottom:  # nothing below to hide: deletions can go
            merged = {k: v for k, v in merged.items() if v[1] is not None}
        order = [(s, i) for s, i in (*lower.order.get(name, ()), *upper.order.get(name, ()))
                 if (e := merged.get(i)) is not None and e[0] == s and e[1] is not None]
        if merged:
            out.entries[name] = merged
            out.size += len(merged)
        if order:
            out.order[name] = order
    return out


def _compact(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    stack = builtins.list(layers)
    while len(stack) >= 2 and stack[-1].size * 2 >= stack[-2].size:
        upper, lower = stack.pop(), stack.pop()
        stack.append(_merge(lower, upper, bottom=not stack))
    return tuple(stack)


@dataclass(frozen=True)
class Frozen:
    """An immutable world state: a snapshot, or the start of a fork."""

    layers: tuple[Layer, ...]
    seq: int
    tick: int
    version: int
    counters: dict[str, int]
    counts: dict[str, int]
    sizes: dict[str, int]
    created: float
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class State:
    """Everything one world holds."""

    layers: tuple[Layer, ...] = ()
    top: Layer = field(default_factory=Layer)
    seq: int = 0
    tick: int = 0
    version: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    # the event history as JSON texts: a dict tree is several times bigger, and every
    # active sandbox keeps EVENTS_KEEP of them in memory. The newest (fewer than
    # EVENT_BLOCK) as they are, the others zlib-compressed EVENT_BLOCK at a time, as
    # (first id, that block): one compressor per block costs a third of one per event,
    # and similar events next to each other compress several times smaller.
    events: deque[tuple[int, bytes]] = field(default_factory=lambda: deque(maxlen=EVENT_BLOCKS))
    recent: list[bytes] = field(default_factory=list)
    event_seq: int = 0
    log: deque[tuple[int, str, str, str | None]] = field(
        default_factory=lambda: deque(maxlen=CHANGELOG_KEEP))
    log_start: int = 0  # the log holds every change after this version
    marks: dict[str, int] = field(default_factory=dict)  # snapshot id -> version equal to it
    created: float = field(default_factory=time.time)
    last_activity: float = field(default_factory=time.time)
    ttl: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def lookup(self, collection: str, id: str) -> Entry | None:
        entries = self.top.entries.get(collection)
        if entries is not None and (e := entries.get(id)) is not None:
            return e
        return _find(self.layers, collection, id)

    def freeze(self) -> tuple[Layer, ...]:
        """Make the top layer frozen (shareable) and start a new one."""
        if self.top.size:
            self.layers = _compact((*self.layers, self.top))
            self.top = Layer()
        return self.layers

    def frozen(self, source: str | None = None,
               meta: dict[str, Any] | None = None) -> Frozen:
        return Frozen(self.freeze(), self.seq, self.tick, self.version, dict(self.counters),
                      dict(self.counts), dict(self.sizes), time.time(), source,
                      dict(meta or {}))

    def become(self, f: Frozen, mark: str | None) -> None:
        """Take the objects, counters and clock of ``f`` (copy-on-write)."""
        self.layers, self.top = f.layers, Layer()
        self.seq, self.tick = f.seq, f.tick
        self.counters, self.counts, self.sizes = dict(f.counters), dict(f.counts), dict(f.sizes)
        self.version += 1
        self.log.clear()
        self.log_start = self.version
        self.marks = {mark: self.version} if mark is not None else {}
        self.last_activity = time.time()


def _find(layers: tuple[Layer, ...], collection: str, id: str) -> Entry | None:
    for layer in reversed(layers):
        entries = layer.entries.get(collection)
        if entries is not None and (e := entries.get(id)) is not None:
            return e
    return None


def scan_layers(state_layers: tuple[Layer, ...], lookup: Any, collection: str,
                after: str | None, reverse: bool) -> Iterator[tuple[str, str]]:
    """(id, JSON) of live objects in creation order across ``state_layers``."""
    start_seq: int | None = None
    if after is not None:
        e = lookup(collection, after)
        if e is None or e[1] is None:
            return
        start_seq = e[0]
    for layer in (reversed(state_layers) if reverse else state_layers):
        order = layer.order.get(collection)
        if not order:
            continue
        if reverse:
            i = (bisect.bisect_left(order, start_seq, key=lambda t: t[0])
                 if start_seq is not None else len(order))
            while i > 0:
                i -= 1
                s, id = order[i]
                e = lookup(collection, id)
                if e is not None and e[0] == s and e[1] is not None:
                    yield id, e[1]
        else:
            i = (bisect.bisect_right(order, start_seq, key=lambda t: t[0])
                 if start_seq is not None else 0)
            while i < len(order):  # the top layer may grow while a caller iterates
                s, id = order[i]
                i += 1
                e = lookup(collection, id)
                if e is not None and e[0] == s and e[1] is not None:
                    yield id, e[1]


class MemoryWorld(World):
    """A world of the in-process store."""

    def __init__(self, name: str, seed: int | None, state: State,
                 store: MemoryStore) -> None:
        super().__init__(name, seed)
        self._state = state
        self._store = store
        self.journal: builtins.list[dict[str, Any]] = []  # committed ops not yet flushed
        # Opened from --world with no journal yet: the first flush writes the starting
        # world before the changes, so a restart reads back what the changes were made on.
        self.from_initial = False
        self._base = state.version  # the world's version when the open transaction began
        self._at_tick(state.tick)

    def _read(self, collection: str, id: str) -> str | None:
        e = self._state.lookup(collection, id)
        return e[1] if e is not None else None

    def _scan_raw(self, collection: str, *, after: str | None,
                  reverse: bool) -> Iterator[tuple[str, str]]:
        st = self._state
        return scan_layers((*st.layers, st.top), st.lookup, collection, after, reverse)

    def _count(self, collection: str) -> int:
        return self._state.counts.get(collection, 0)

    def _totals(self) -> tuple[int, int]:
        st = self._state
        return sum(st.counts.values()), sum(st.sizes.values())

    def _collection_names(self) -> builtins.list[str]:
        return [c for c, n in self._state.counts.items() if n > 0]

    def _counter(self, name: str) -> int:
        return self._state.counters.get(name, 0)

    def _counters(self) -> dict[str, int]:
        return dict(self._state.counters)

    def _next_tick(self) -> int:
        self._state.tick += 1
        self.journal.append({"op": "tick", "v": self._state.tick})
        return self._state.tick

    def _begin(self, txn: Txn) -> None:
        self._base = self._state.version

    def _commit(self, txn: Txn) -> None:
        st = self._state
        if st.version != self._base:
            # Another writer got in while this transaction waited on the loop (its scans
            # take turns with other requests, guard.world.bridge): what it read may be
            # gone. Nothing is applied; World.atomically runs it again.
            raise Conflict(f"sandbox {self.name!r} changed during this transaction")
        st.last_activity = time.time()  # a request that only reads is activity too (TTL)
        if not txn.writes and not txn.counters:
            return
        st.version += 1
        creations = [k for k in txn.created if txn.writes.get(k) is not None]
        for key, raw in txn.writes.items():
            if key not in txn.created:
                self._apply(st, key, raw)
        for key in creations:
            self._apply(st, key, txn.writes[key])
        st.counters.update(txn.counters)
        for name, value in txn.counters.items():
            self.journal.append({"op": "counter", "k": name, "v": value})
        st.last_activity = time.time()

    def _apply(self, st: State, key: tuple[str, str], raw: str | None) -> None:
        collection, id = key
        old = st.lookup(collection, id)
        before = old[1] if old is not None else None
        if raw is None and before is None:
            return
        top = st.top
        entries = top.entries.setdefault(collection, {})
        if raw is None:
            assert old is not None and before is not None
            if _find(st.layers, collection, id) is None:
                del entries[id]
                top.size -= 1
            else:
                entries[id] = (old[0], None)
            top.dead += 1
            st.counts[collection] -= 1
            st.sizes[collection] -= len(before)
            self.journal.append({"op": "delete", "c": collection, "id": id})
        else:
            if before is None:
                st.seq += 1
                seq = st.seq
                top.order.setdefault(collection, []).append((seq, id))
                st.counts[collection] = st.counts.get(collection, 0) + 1
            else:
                assert old is not None
                seq = old[0]
            if id not in entries:
                top.size += 1
            entries[id] = (seq, raw)
            st.sizes[collection] = st.sizes.get(collection, 0) + len(raw) - len(before or "")
            self.journal.append({"op": "put", "c": collection, "id": id, "o": raw})
        st.log.append((st.version, collection, id, before))
        if len(st.log) == st.log.maxlen:
            st.log_start = max(st.log_start, st.log[0][0] - 1)
        if top.dead > 64 and top.dead * 2 > top.size:
            _sweep(top, st.layers)

    def load(self, snapshot: dict[str, Any], *, replace: bool = True) -> None:
        check_snapshot(snapshot)
        if replace:
            frozen = _frozen_from(snapshot, self._state.tick)
            self._state.become(frozen, None)
            self.journal.append({"op": "load", "snapshot": snapshot})
            return
        with self.transaction():
            for name, objects in snapshot["collections"].items():
                for key, obj in objects.items():
                    self.put(name, obj, key)
            for name, value in (snapshot.get("counters") or {}).items():
                assert self._txn is not None
                self._txn.counters[name] = value


def _sweep(top: Layer, below: tuple[Layer, ...]) -> None:
    """Drop the top layer's order entries of deleted objects (a collection with churn,
    such as pruned idempotency keys, would otherwise grow its order list forever)."""
    for name, order in top.order.items():
        entries = top.entries.get(name, {})
        top.order[name] = [(s, i) for s, i in order
                           if (e := entries.get(i)) is not None and e[0] == s
                           and e[1] is not None]
    top.dead = 0


def _frozen_from(snapshot: dict[str, Any], tick: int, source: str | None = None,
                 meta: dict[str, Any] | None = None) -> Frozen:
    """A frozen state from a snapshot document (one bottom layer, in document order)."""
    layer = Layer()
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    seq = 0
    for name, objects in snapshot["collections"].items():
        if not objects:
            continue
        entries: dict[str, Entry] = {}
        order = []
        for key, obj in objects.items():
            seq += 1
            raw = dumps(obj)
            entries[str(key)] = (seq, raw)
            order.append((seq, str(key)))
            sizes[name] = sizes.get(name, 0) + len(raw)
        layer.entries[name], layer.order[name] = entries, order
        layer.size += len(entries)
        counts[name] = len(entries)
    return Frozen((layer,) if layer.size else (), seq, int(snapshot.get("tick") or tick), 0,
                  dict(snapshot.get("counters") or {}), counts, sizes, time.time(), source,
                  dict(meta or {}))


class MemoryStore(WorldStore):
    """Worlds in this process. With ``state_dir`` (``--state``) every world is journaled
    to ``DIR/<sandbox>.jsonl`` and read back at start; snapshots stay in memory."""

    def __init__(self, *, seed: int | None = None, state_dir: Path | None = None,
                 initial: dict[str, Any] | None = None) -> None:
        self.seed = seed
        self.state_dir = state_dir
        self.initial = check_snapshot(initial, "initial world") if initial else None
        self._initial: Frozen | None = (_frozen_from(self.initial, 0) if self.initial
                                        else None)
        self._worlds: dict[str, MemoryWorld] = {}
        self._snapshots: dict[str, Frozen] = {}
        self._index: dict[tuple[str, str], str] = {}
        self._waiters: dict[str, builtins.list[asyncio.Future[None]]] = {}
        self._journal_names: dict[str, str] = {}  # sandbox -> its journal file's name
        # the journals appended to lately, kept open (oldest first): a commit is then one
        # write, not an open, a write and a close; closed when their file is replaced or
        # deleted, or their world leaves memory
        self._journals: dict[str, BinaryIO] = {}
        self.deliveries = MemoryQueue()
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)

    # worlds

    def world(self, sandbox: str) -> MemoryWorld:
        w = self._worlds.get(sandbox)
        if w is None:
            w = self._worlds[sandbox] = self._open(sandbox)
        return w

    def exists(self, sandbox: str) -> bool:
        return sandbox in self._worlds or (
            self.state_dir is not None and self._path(sandbox).exists())

    def sandboxes(self) -> builtins.list[str]:
        names = set(self._worlds)
        if self.state_dir is not None:
            names.update(unquote(p.stem) for p in self.state_dir.glob("*.jsonl"))
        return sorted(names)

    def create(self, sandbox: str, *, snapshot: str | None = None, ttl: float | None = None,
               meta: dict[str, Any] | None = None) -> WorldInfo:
        if self.exists(sandbox):
            raise WorldExists(f"sandbox {sandbox!r} exists already")
        start = self._snapshot(snapshot) if snapshot is not None else self._initial
        return self._new(sandbox, start, snapshot, ttl, meta)

    def fork(self, source: str, new: str, *, ttl: float | None = None,
             meta: dict[str, Any] | None = None) -> WorldInfo:
        src = self._get(source)
        if self.exists(new):
            raise WorldExists(f"sandbox {new!r} exists already")
        st = src._state
        frozen = st.frozen(source)
        w = self._install(new, State(
            layers=frozen.layers, seq=st.seq, tick=st.tick, version=st.version,
            counters=dict(st.counters), counts=dict(st.counts), sizes=dict(st.sizes),
            events=deque(st.events, maxlen=EVENT_BLOCKS), recent=list(st.recent),
            event_seq=st.event_seq,
            log=deque(st.log, maxlen=CHANGELOG_KEEP), log_start=st.log_start,
            marks=dict(st.marks), ttl=ttl, meta=dict(meta or {})))
        self._journal_load(w)
        return self.info(new)

    def _new(self, sandbox: str, start: Frozen | None, mark: str | None, ttl: float | None,
             meta: dict[str, Any] | None) -> WorldInfo:
        state = State(ttl=ttl, meta=dict(meta or {}))
        if start is not None:
            state.become(start, mark)
        w = self._install(sandbox, state)
        if start is not None:
            self._journal_load(w)
        return self.info(sandbox)

    def _install(self, sandbox: str, state: State) -> MemoryWorld:
        w = self._worlds[sandbox] = MemoryWorld(sandbox, self.seed, state, self)
        return w

    def restore(self, sandbox: str, sid: str) -> WorldInfo:
        w = self._get(sandbox)
        w._state.become(self._snapshot(sid), sid)
        w._at_tick(w._state.tick)
        self._journal_load(w)
        return self.info(sandbox)

    def reset(self, sandbox: str) -> WorldInfo:
        w = self._get(sandbox)
        empty = self._initial or Frozen((), 0, 0, 0, {}, {}, {}, time.time())
        w._state.become(empty, None)
        w._at_tick(w._state.tick)
        self._journal_load(w)
        return self.info(sandbox)

    def delete(self, sandbox: str) -> bool:
        found = self._worlds.pop(sandbox, None) is not None
        self._close_journal(sandbox)
        if self.state_dir is not None and self._path(sandbox).exists():
            self._path(sandbox).unlink()
            found = True
        for waiter in self._waiters.pop(sandbox, []):
            if not waiter.done():
                waiter.set_result(None)
        return found

    def info(self, sandbox: str) -> WorldInfo:
        st = self._get(sandbox)._state
        return WorldInfo(sandbox, st.version, st.created, st.last_activity, st.ttl,
                         {c: n for c, n in st.counts.items() if n > 0},
                         {c: st.sizes.get(c, 0) for c, n in st.counts.items() if n > 0},
                         st.event_seq, dict(st.meta))

    def update_meta(self, sandbox: str, **values: Any) -> WorldInfo:
        st = self._get(sandbox)._state
        for key, value in values.items():
            if value is None:
                st.meta.pop(key, None)
            else:
                st.meta[key] = json.loads(dumps(value))
        return self.info(sandbox)

    def diff(self, sandbox: str, since: str | int) -> dict[str, Any]:
        return diff(self, sandbox, since)

    def index_set(self, kind: str, key: str, sandbox: str | None) -> None:
        if sandbox is None:
            self._index.pop((kind, key), None)
        else:
            self._index[(kind, key)] = sandbox

    def index_get(self, kind: str, key: str) -> str | None:
        return self._index.get((kind, key))

    def expire(self, now: float | None = None) -> builtins.list[str]:
        now = time.time() if now is None else now
        gone = [name for name, w in self._worlds.items()
                if w._state.ttl is not None and w._state.last_activity + w._state.ttl < now]
        for name in gone:
            self.delete(name)
        return gone

    def evict(self, idle: float, now: float | None = None) -> builtins.list[str]:
        """Drop from memory the worlds no request has touched for ``idle`` seconds. With
        ``state_dir`` their journal is flushed first and :meth:`world` reads it back on the
        next request, objects, counters and ids as they were (the event history, which is
        not journaled, starts again); without, an evicted world is gone, as after a
        restart. Worlds the control plane made (a ttl or metadata), worlds someone is
        waiting on are kept.
        Returns the names evicted.

        >>> store = MemoryStore(seed=1)
        >>> _ = store.world("idle").put("notes", {"id": "n1"})
        >>> store.evict(0, now=time.time() + 1), store.world("idle").get("notes", "n1")
        (['idle'], None)
        """
        now = time.time() if now is None else now
        gone = [name for name, w in self._worlds.items()
                if w._state.last_activity + idle < now and not w.in_transaction
                and w._state.ttl is None and not w._state.meta
                and not self._waiters.get(name)]
        for name in gone:
            w = self._worlds[name]
            self.flush(w)
            self._close_journal(name)
            del self._worlds[name]
        return gone

    def _get(self, sandbox: str) -> MemoryWorld:
        if not self.exists(sandbox):
            raise NoSuchWorld(f"no sandbox {sandbox!r}")
        return self.world(sandbox)

    # snapshots

    def snapshot(self, sandbox: str, *, id: str | None = None,
                 meta: dict[str, Any] | None = None) -> SnapshotInfo:
        sid = check_snapshot_id(id) if id is not None else "snap_" + secrets.token_hex(8)
        if sid in self._snapshots:
            raise WorldExists(f"snapshot {sid!r} exists already")
        st = self._get(sandbox)._state
        self._snapshots[sid] = st.frozen(sandbox, meta)
        st.marks[sid] = st.version
        return self.snapshot_info(sid)

    def snapshots(self) -> builtins.list[SnapshotInfo]:
        return sorted((self.snapshot_info(s) for s in self._snapshots),
                      key=lambda s: (s.created, s.id))

    def snapshot_info(self, sid: str) -> SnapshotInfo:
        f = self._snapshot(sid)
        return SnapshotInfo(sid, f.source, f.version, f.created,
                            {c: n for c, n in f.counts.items() if n > 0},
                            {c: f.sizes.get(c, 0) for c, n in f.counts.items() if n > 0},
                            dict(f.meta))

    def export_snapshot(self, sid: str) -> dict[str, Any]:
        f = self._snapshot(sid)
        view = self._view(sid)
        doc = view.snapshot()
        doc["sandbox"] = f.source
        doc["tick"] = f.tick
        return doc

    def import_snapshot(self, data: dict[str, Any], *, id: str | None = None,
                        meta: dict[str, Any] | None = None) -> SnapshotInfo:
        check_snapshot(data, "uploaded snapshot")
        sid = check_snapshot_id(id) if id is not None else "snap_" + secrets.token_hex(8)
        self._snapshots[sid] = _frozen_from(data, 0, None, meta)
        return self.snapshot_info(sid)

    def delete_snapshot(self, sid: str) -> bool:
        return self._snapshots.pop(sid, None) is not None

    def _snapshot(self, sid: str) -> Frozen:
        f = self._snapshots.get(sid) if isinstance(sid, str) else None
        if f is None:
            raise NoSuchSnapshot(f"no snapshot {sid!r}")
        return f

    def _view(self, sid: str) -> World:
        f = self._snapshot(sid)
        st = State(layers=f.layers, seq=f.seq, tick=f.tick, version=f.version,
                   counters=dict(f.counters), counts=dict(f.counts), sizes=dict(f.sizes))
        return MemoryWorld(f"snapshot:{sid}", self.seed, st, self)

    def _changes_since(self, sandbox: str,
                       since: str | int) -> builtins.list[tuple[str, str, str | None]] | None:
        st = self._get(sandbox)._state
        if isinstance(since, str):
            if since not in st.marks:
                return None
            version = st.marks[since]
        else:
            version = since
        if version < st.log_start:
            return None
        return [(c, i, before) for v, c, i, before in st.log if v > version]

    def version(self, sandbox: str) -> int:
        return self._get(sandbox)._state.version

    # events

    def add_event(self, sandbox: str, event: dict[str, Any]) -> int:
        st = self.world(sandbox)._state
        # ASCII JSON, as every stored object: a request's bytes that were not UTF-8 (lone
        # surrogates) are kept as escapes, not lost with the whole event.
        return self._add_event(sandbox, st, dumps({"id": st.event_seq + 1, **event}).encode())

    def add_event_line(self, sandbox: str, event: dict[str, Any], line: bytes) -> int:
        if "id" in event:
            return self.add_event(sandbox, event)
        st = self.world(sandbox)._state
        # the audit log's line (UTF-8; a lone surrogate written as its escape) with the
        # feed id in front: the same JSON object, not serialized again
        return self._add_event(sandbox, st, b'{"id":%d,%s' % (st.event_seq + 1,
                                                               line.rstrip(b"\n")[1:]))

    def _add_event(self, sandbox: str, st: State, text: bytes) -> int:
        st.event_seq += 1
        st.recent.append(text)
        if len(st.recent) >= EVENT_BLOCK:
            st.events.append((st.event_seq - len(st.recent) + 1,
                              _compress(b"\n".join(st.recent))))
            st.recent = []
        for waiter in self._waiters.pop(sandbox, []):
            if not waiter.done():
                waiter.set_result(None)
        return st.event_seq

    def events(self, sandbox: str, after: int = 0,
               limit: int = 100) -> builtins.list[dict[str, Any]]:
        w = self._worlds.get(sandbox)
        if w is None or limit <= 0:
            return []
        st = w._state
        first = max(after + 1, st.event_seq - EVENTS_KEEP + 1)  # the first id to return
        texts: builtins.list[bytes] = []
        for start, block in st.events:
            if start + EVENT_BLOCK > first:
                skip = max(0, first - start)
                texts += zlib.decompress(block).split(b"\n")[skip:skip + limit - len(texts)]
                if len(texts) >= limit:
                    break
        skip = max(0, first - (st.event_seq - len(st.recent) + 1))
        texts += st.recent[skip:skip + limit - len(texts)]
        return [json.loads(t) for t in texts]

    async def wait_events(self, sandbox: str, after: int,
                          timeout: float) -> builtins.list[dict[str, Any]]:
        found = self.events(sandbox, after)
        if found or timeout <= 0:
            return found
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(sandbox, []).append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            waiting = self._waiters.get(sandbox, [])
            if waiter in waiting:
                waiting.remove(waiter)
        return self.events(sandbox, after)

    # the --state journal

    def flush(self, world: World) -> None:
        """Append the world's committed changes to its journal file (when persisting)."""
        if not isinstance(world, MemoryWorld) or not world.journal:
            return
        ops, world.journal = world.journal, []
        if self.state_dir is None or self._worlds.get(world.name) is not world:
            return  # in memory only, or deleted (never resurrect a deleted world on disk)
        if world.from_initial:
            ops.insert(0, {"op": "load", "snapshot": {**(self.initial or {}), "tick": 0}})
            world.from_initial = False
        lines = "".join(json.dumps(op, separators=(",", ":")) + "\n" for op in ops)
        # One unbuffered append per commit, as the audit log writes an event: a guard that
        # dies loses nothing written. No fsync per request: that waited on the disk with
        # the event loop blocked, the largest single cost of a simulated request.
        try:
            f = self._journal(world.name)
            data = memoryview(lines.encode("utf-8"))
            while data:
                data = data[f.write(data) or 0:]
        except OSError as e:
            self._close_journal(world.name)  # opened afresh next time
            raise WorldError(f"cannot write state for sandbox {world.name!r}: {e}") from e

    def _journal(self, sandbox: str) -> BinaryIO:
        """The sandbox's journal, open for appending (unbuffered), kept open."""
        f = self._journals.pop(sandbox, None)
        if f is None:
            if len(self._journals) >= OPEN_JOURNALS:
                self._close_journal(next(iter(self._journals)))
            f = open(self._journal_name(sandbox), "ab", buffering=0)
        self._journals[sandbox] = f  # the most recent last
        return f

    def _close_journal(self, sandbox: str) -> None:
        f = self._journals.pop(sandbox, None)
        if f is not None:
            try:
                f.close()
            except OSError:  # unbuffered: everything written is in the file already
                pass

    def close(self) -> None:
        for sandbox in list(self._journals):
            self._close_journal(sandbox)

    def _journal_load(self, w: MemoryWorld) -> None:
        """A world replaced wholesale (fork, restore, reset) starts its journal anew."""
        w.journal, w.from_initial = [], False
        if self.state_dir is None:
            return
        doc = w.snapshot()
        doc["tick"] = w._state.tick
        self._close_journal(w.name)  # its file is replaced
        path = self._path(w.name)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"op": "load", "snapshot": doc},
                                      separators=(",", ":")) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as e:
            raise WorldError(f"cannot write state for sandbox {w.name!r}: {e}") from e

    def _open(self, sandbox: str) -> MemoryWorld:
        path = self._path(sandbox) if self.state_dir is not None else None
        if path is None or not path.exists():
            state = State()
            if self._initial is not None:
                state.become(self._initial, None)
                state.version = state.log_start = 0
            w = MemoryWorld(sandbox, self.seed, state, self)
            w.from_initial = path is not None and self._initial is not None
            return w
        w = MemoryWorld(sandbox, self.seed, State(), self)
        for n, op in enumerate(_read_journal(path), 1):
            try:
                _replay(w, op)
            except (KeyError, TypeError, ValueError, WorldError) as e:
                raise WorldError(f"{path}:{n}: bad state journal entry: {e}") from e
        w.journal = []
        w._at_tick(w._state.tick)
        return w

    def _path(self, sandbox: str) -> Path:
        assert self.state_dir is not None
        return self.state_dir / f"{quote(sandbox, safe='')}.jsonl"

    def _journal_name(self, sandbox: str) -> str:
        """:meth:`_path` as a string, remembered: every commit appends to it."""
        names = self._journal_names
        found = names.get(sandbox)
        if found is None:
            if len(names) >= 4096:
                names.clear()
            found = names[sandbox] = str(self._path(sandbox))
        return found


def _compress(data: bytes) -> bytes:
    """zlib at level 1 with an 8 KiB window (two or three feed events back) and little
    hash memory: ``zlib.compress`` (32 KiB window, memLevel 8) spent more time setting up
    its state than compressing a block. ``zlib.decompress`` reads it."""
    z = zlib.compressobj(1, zlib.DEFLATED, 13, 5)
    return z.compress(data) + z.flush()


def _read_journal(path: Path) -> builtins.list[dict[str, Any]]:
    ops = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ops.append(json.loads(line))
            except ValueError as e:
                raise WorldError(f"{path}:{n}: corrupt state journal: {e}") from e
    return ops


def _replay(w: MemoryWorld, op: dict[str, Any]) -> None:
    kind = op.get("op")
    st = w._state
    if kind == "put":
        raw = op["o"] if isinstance(op["o"], str) else dumps(op["o"])
        st.version += 1
        w._apply(st, (op["c"], op["id"]), raw)
    elif kind == "delete":
        st.version += 1
        w._apply(st, (op["c"], op["id"]), None)
    elif kind == "counter":
        st.counters[op["k"]] = int(op["v"])
    elif kind == "tick":
        st.tick = int(op["v"])
    elif kind == "load":
        snap = check_snapshot(op["snapshot"])
        st.become(_frozen_from(snap, int(snap.get("tick") or 0)), None)
