"""Per-sandbox object store with transactions, snapshots and an optional on-disk journal.

>>> store = WorldStore(seed=7)
>>> w = store.world("agent-1")
>>> with w.transaction() as changes:
...     _ = w.put("customers", {"id": "cus_1", "email": "a@b.c"})
>>> w.get("customers", "cus_1")["email"], [c.op for c in changes]
('a@b.c', ['create'])
>>> store.world("agent-2").get("customers", "cus_1") is None
True
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from guard.clock import VIRTUAL_EPOCH, Clock
from guard.errors import WorldError
from guard.ids import Ids

SNAPSHOT_VERSION = 1


def _copy(obj: Any) -> Any:
    """A deep copy of JSON data (several times faster than copy.deepcopy for it)."""
    return json.loads(json.dumps(obj))


@dataclass(frozen=True)
class Change:
    """One change a request made to its sandbox's world (recorded in the audit log)."""

    op: str  # create | update | delete
    collection: str
    id: str
    object: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "collection": self.collection, "id": self.id}


@dataclass
class _Txn:
    undo: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)


class World:
    """One sandbox's objects, counters, random stream and clock.

    Objects go in and come out as copies, so a caller cannot change the store
    behind its back; changes happen through :meth:`put` and :meth:`delete` inside
    :meth:`transaction`, which rolls everything back if the request fails.
    """

    def __init__(self, name: str, seed: int, clock: Clock) -> None:
        self.name = name
        self.rng = random.Random(seed)
        self.ids = Ids(self.rng)
        self.clock = clock
        self._seed = seed
        self._faker: Any = None
        self._collections: dict[str, dict[str, dict[str, Any]]] = {}
        self._counters: dict[str, int] = {}
        self._txn: _Txn | None = None
        self.journal: list[dict[str, Any]] = []  # ops committed since the last flush

    @property
    def faker(self) -> Any:
        """A Faker seeded from the sandbox seed (created on first use: Faker is slow to load)."""
        if self._faker is None:
            from faker import Faker

            self._faker = Faker("en_US")
            self._faker.seed_instance(self._seed)
        return self._faker

    # reading

    def get(self, collection: str, id: str) -> dict[str, Any] | None:
        obj = self._collections.get(collection, {}).get(id)
        return _copy(obj) if obj is not None else None

    def list(self, collection: str) -> list[dict[str, Any]]:
        """All objects of a collection, oldest first."""
        objects: list[dict[str, Any]] = _copy(list(self._collections.get(collection, {}).values()))
        return objects

    def count(self, collection: str) -> int:
        return len(self._collections.get(collection, {}))

    def collections(self) -> builtins.list[str]:
        return sorted(self._collections)

    # writing

    @contextmanager
    def transaction(self) -> Iterator[builtins.list[Change]]:
        """Group the changes of one request; on an exception they are all undone."""
        if self._txn is not None:
            yield self._txn.changes
            return
        txn = self._txn = _Txn()
        try:
            yield txn.changes
        except BaseException:
            self._rollback(txn)
            raise
        finally:
            self._txn = None
        self._record(txn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo only this block's changes if it raises, keeping the rest of the transaction.

        Handlers use it to turn a failed step into an error response (Stripe's 400s)
        without leaving half a change behind, while the request itself still succeeds.
        """
        txn = self._txn
        if txn is None:
            with self.transaction():
                with self.savepoint():
                    yield
            return
        mark, changes, counters = len(txn.undo), len(txn.changes), dict(self._counters)
        try:
            yield
        except BaseException:
            undo = txn.undo[mark:]
            del txn.undo[mark:]
            del txn.changes[changes:]
            for collection, id, before in reversed(undo):
                coll = self._collections.setdefault(collection, {})
                if before is None:
                    coll.pop(id, None)
                else:
                    coll[id] = before
            self._counters = counters
            raise

    def put(self, collection: str, obj: dict[str, Any], id: str | None = None) -> dict[str, Any]:
        """Create or replace an object (stored as a copy); its id is ``id`` or ``obj["id"]``.
        Returns ``obj`` itself."""
        key = id if id is not None else obj.get("id")
        if not isinstance(key, str) or not key:
            raise WorldError(f"cannot store an object without a string id in {collection!r}")
        coll = self._collections.setdefault(collection, {})
        before = coll.get(key)
        # Stored objects are never changed in place (put replaces them), so the
        # change record may share the stored copy.
        stored = _copy(obj)
        self._log(collection, key, before)
        coll[key] = stored
        op = "create" if before is None else "update"
        self._change(Change(op, collection, key, stored))
        return obj

    def delete(self, collection: str, id: str) -> bool:
        coll = self._collections.get(collection, {})
        if id not in coll:
            return False
        self._log(collection, id, coll[id])
        del coll[id]
        self._change(Change("delete", collection, id))
        return True

    def next(self, counter: str) -> int:
        """The next number of a named counter (1, 2, 3, ...), e.g. issue numbers per repo."""
        if self._txn is not None and counter not in self._txn.counters:
            self._txn.counters[counter] = self._counters.get(counter, 0)
        value = self._counters.get(counter, 0) + 1
        self._counters[counter] = value
        return value

    # snapshots

    def snapshot(self) -> dict[str, Any]:
        return {
            "v": SNAPSHOT_VERSION,
            "sandbox": self.name,
            "collections": _copy(self._collections),
            "counters": dict(self._counters),
        }

    def load(self, snapshot: dict[str, Any], *, replace: bool = True) -> None:
        """Load a snapshot (from :meth:`snapshot` or a seed file) into this sandbox."""
        if snapshot.get("v") != SNAPSHOT_VERSION:
            raise WorldError(f"unsupported snapshot version {snapshot.get('v')!r}")
        if replace:
            self._collections = {}
            self._counters = {}
        for name, objects in (snapshot.get("collections") or {}).items():
            coll = self._collections.setdefault(name, {})
            for key, obj in objects.items():
                coll[key] = _copy(obj)
        self._counters.update(snapshot.get("counters") or {})
        self.journal.append({"op": "load", "snapshot": self.snapshot()})

    # internals

    def _log(self, collection: str, id: str, before: dict[str, Any] | None) -> None:
        if self._txn is not None:
            self._txn.undo.append((collection, id, before))

    def _change(self, change: Change) -> None:
        if self._txn is not None:
            self._txn.changes.append(change)
        else:
            self._record(_Txn(changes=[change]))

    def _rollback(self, txn: _Txn) -> None:
        for collection, id, before in reversed(txn.undo):
            coll = self._collections.setdefault(collection, {})
            if before is None:
                coll.pop(id, None)
            else:
                coll[id] = before
        for name, value in txn.counters.items():
            self._counters[name] = value

    def _record(self, txn: _Txn) -> None:
        for c in txn.changes:
            if c.op == "delete":
                self.journal.append({"op": "delete", "c": c.collection, "id": c.id})
            else:
                self.journal.append({"op": "put", "c": c.collection, "id": c.id, "o": c.object})
        for name in txn.counters:
            self.journal.append({"op": "counter", "k": name, "v": self._counters[name]})


class WorldStore:
    """All sandboxes' worlds. In memory, or journaled under ``state_dir`` (``--state``).

    A new sandbox starts from ``initial`` (a snapshot, e.g. a prepared world of
    customers and prices) when given. With ``seed`` set, every sandbox's ids,
    Faker data and clock are derived from the seed and the sandbox name.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        state_dir: Path | None = None,
        initial: dict[str, Any] | None = None,
    ) -> None:
        self.seed = seed
        self.state_dir = state_dir
        self.initial = initial
        self._worlds: dict[str, World] = {}
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)

    def world(self, sandbox: str) -> World:
        w = self._worlds.get(sandbox)
        if w is None:
            w = self._worlds[sandbox] = self._open(sandbox)
        return w

    def sandboxes(self) -> list[str]:
        names = set(self._worlds)
        if self.state_dir is not None:
            from urllib.parse import unquote

            names.update(unquote(p.stem) for p in self.state_dir.glob("*.jsonl"))
        return sorted(names)

    def flush(self, world: World) -> None:
        """Append the world's committed changes to its journal file (when persisting)."""
        if not world.journal:
            return
        ops, world.journal = world.journal, []
        if self.state_dir is None:
            return
        ops.append({"op": "clock", "v": world.clock.state()})
        try:
            with open(self._path(world.name), "a", encoding="utf-8") as f:
                for op in ops:
                    f.write(json.dumps(op, separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise WorldError(f"cannot write state for sandbox {world.name!r}: {e}") from e

    def _seed_for(self, sandbox: str, salt: int = 0) -> int:
        if self.seed is None:
            return secrets.randbits(64)
        digest = hashlib.sha256(f"{self.seed}:{sandbox}:{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def _open(self, sandbox: str) -> World:
        clock = Clock(VIRTUAL_EPOCH if self.seed is not None else None)
        path = self._path(sandbox) if self.state_dir is not None else None
        ops = _read_journal(path) if path is not None and path.exists() else []
        # Reseed past what the journal already used, so a restarted guard never reissues ids.
        w = World(sandbox, self._seed_for(sandbox, len(ops)), clock)
        if not ops:
            if self.initial is not None:
                w.load(self.initial)
            return w
        for op in ops:
            _apply(w, op)
        w.journal = []
        return w

    def _path(self, sandbox: str) -> Path:
        assert self.state_dir is not None
        return self.state_dir / f"{quote(sandbox, safe='')}.jsonl"


def _read_journal(path: Path) -> list[dict[str, Any]]:
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


def _apply(w: World, op: dict[str, Any]) -> None:
    kind = op.get("op")
    if kind == "put":
        w._collections.setdefault(op["c"], {})[op["id"]] = op["o"]
    elif kind == "delete":
        w._collections.get(op["c"], {}).pop(op["id"], None)
    elif kind == "counter":
        w._counters[op["k"]] = op["v"]
    elif kind == "clock":
        w.clock.restore(op["v"])
    elif kind == "load":
        w.load(op["snapshot"])
