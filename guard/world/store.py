"""The world-store interface: one sandbox's world (:class:`World`) and every sandbox's worlds
(:class:`WorldStore`), with two backends (:mod:`guard.world.memory`, :mod:`guard.world.redis`).

A world holds JSON objects in named collections, named counters, a request number that
drives its virtual clock and id stream, an event history and a log of recent changes.
Handlers change it inside :meth:`World.transaction`; nothing is written until the
transaction commits, so a failed request leaves no trace. Backends keep objects as JSON
text and share it copy-on-write between forks and snapshots.

>>> from guard.world.memory import MemoryStore
>>> store = MemoryStore(seed=7)
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
import random
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from guard.clock import VIRTUAL_EPOCH, Clock
from guard.errors import NoSuchSnapshot, WorldError
from guard.ids import Ids
from guard.limits import WORLD_RULE, LimitExceeded
from guard.world import bridge
from guard.world import snapshot as files
from guard.world.deliveries import DeliveryQueue
from guard.world.snapshot import SNAPSHOT_VERSION

CHANGELOG_KEEP = 10_000  # changes a world remembers for diff?since=VERSION
EVENTS_KEEP = 200  # events a world keeps in its history (guard.internal, admin API)
RETRIES = 50  # attempts of one transaction against concurrent writers (Redis)
BACKOFF_CAP = 0.05  # seconds: the longest random pause between two attempts
SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

T = TypeVar("T")


class Conflict(WorldError):
    """Another writer changed what this transaction read; it was not applied (retry it)."""


def dumps(obj: Any) -> str:
    """Objects are stored as compact ASCII JSON (ASCII: lone surrogates from hostile
    requests survive every backend)."""
    return json.dumps(obj, separators=(",", ":"))


@dataclass(frozen=True)
class Change:
    """One change a request made to its sandbox's world (recorded in the audit log)."""

    op: str  # create | update | delete
    collection: str
    id: str
    object: dict[str, Any] | None = None
    # bytes of the object as stored (ASCII JSON): never fewer than its UTF-8 JSON has, so
    # the audit log knows a small object is within its limit without serializing it again
    size: int | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "collection": self.collection, "id": self.id}


@dataclass(frozen=True)
class WorldInfo:
    """What the control plane shows about a world."""

    sandbox: str
    version: int
    created: float
    last_activity: float
    ttl: float | None
    counts: dict[str, int]
    bytes: dict[str, int]
    events: int
    meta: dict[str, Any]

    @property
    def objects(self) -> int:
        return sum(self.counts.values())

    @property
    def expires_at(self) -> float | None:
        return None if self.ttl is None else self.last_activity + self.ttl

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "objects": self.objects, "expires_at": self.expires_at}


@dataclass(frozen=True)
class SnapshotInfo:
    """An immutable snapshot: ``source`` is the sandbox it was taken from (None: uploaded)."""

    id: str
    source: str | None
    version: int
    created: float
    counts: dict[str, int]
    bytes: dict[str, int]
    meta: dict[str, Any]

    @property
    def objects(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "objects": self.objects}


@dataclass(frozen=True)
class Room:
    """What a transaction needs of its world's limits (:meth:`World.check_room`): it adds
    ``added`` objects and ``grown`` bytes, and the world may hold ``max_objects`` objects
    and ``max_bytes`` bytes (0: no limit)."""

    max_objects: int
    max_bytes: int
    added: int
    grown: int
    objects_by: str
    bytes_by: str

    def refusal(self, sandbox: str, objects: int, size: int) -> LimitExceeded | None:
        """The error when a world holding ``objects`` objects of ``size`` bytes has no
        room for this, else None."""
        if self.max_objects and self.added > 0 and objects + self.added > self.max_objects:
            return LimitExceeded(WORLD_RULE, f"sandbox {sandbox!r} holds {objects} objects; "
                                 f"{self.added} more would pass the limit ({self.objects_by} "
                                 f"{self.max_objects})", 400)
        if self.max_bytes and self.grown > 0 and size + self.grown > self.max_bytes:
            return LimitExceeded(WORLD_RULE, f"sandbox {sandbox!r} holds {size} bytes of "
                                 f"objects; {self.grown} more would pass the limit "
                                 f"({self.bytes_by} {self.max_bytes})", 400)
        return None


@dataclass
class Txn:
    """The pending writes of one transaction, applied at commit or dropped."""

    writes: dict[tuple[str, str], str | None] = field(default_factory=dict)  # None: deleted
    created: dict[tuple[str, str], None] = field(default_factory=dict)  # in creation order
    counters: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # collection -> change in size
    changes: list[Change] = field(default_factory=list)
    room: Room | None = None  # the limits the commit must leave room for (Redis)

    def mark(self) -> tuple[Any, ...]:
        return (dict(self.writes), dict(self.created), dict(self.counters), dict(self.counts),
                self.room, len(self.changes))

    def undo_to(self, mark: tuple[Any, ...]) -> None:
        self.writes, self.created, self.counters, self.counts, self.room, n = mark
        del self.changes[n:]


class _WorldClock(Clock):
    """The world's clock: :meth:`tick` starts a request (the world's next request number)."""

    def __init__(self, world: World, virtual: bool) -> None:
        super().__init__(VIRTUAL_EPOCH if virtual else None)
        self._world = world

    def tick(self) -> None:
        self._world._begin_request()

    def at(self, tick: int) -> None:
        if self.virtual:
            self._now = float(VIRTUAL_EPOCH + tick)


class World(ABC):
    """One sandbox's world, as one process sees it.

    Objects go in and come out as copies, so a caller cannot change the store behind its
    back. Changes happen through :meth:`put`, :meth:`delete` and :meth:`next` inside
    :meth:`transaction`; outside one, each call is its own transaction.
    """

    def __init__(self, name: str, seed: int | None) -> None:
        self.name = name
        self._seed = seed
        self._stream_base = seed if seed is not None else secrets.randbits(64)
        self.rng = random.Random(self._stream_seed(0))
        self.ids = Ids(self.rng)
        self.clock: Clock = _WorldClock(self, seed is not None)
        self._faker: Any = None
        self._open: tuple[Txn, Any] | None = None  # the open transaction and its greenlet
        self._retried = False  # inside atomically(): a conflict runs the work again
        # One request at a time in a transaction of this world: with a store that waits on
        # the network the proxy runs requests as greenlets on its loop (guard.world.bridge),
        # and the admin API and tools may use it from threads.
        self.lock = bridge.Lock()

    blocking = False  # True when its reads and commits wait on the network (Redis)

    @property
    def _txn(self) -> Txn | None:
        """The transaction open in this greenlet (or thread), if any. A request's open
        transaction may wait on the loop (for Redis, or taking turns): code running
        meanwhile (the admin API, guard.internal) reads what is committed, never its
        pending writes."""
        open = self._open
        return open[0] if open is not None and open[1] is bridge.current() else None

    @_txn.setter
    def _txn(self, txn: Txn | None) -> None:
        self._open = (txn, bridge.current()) if txn is not None else None

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open in this world, whoever's."""
        return self._open is not None

    # the request number: virtual clock and id stream

    def _begin_request(self) -> None:
        """Called once per simulated request (``clock.tick()``): take the world's next
        request number, move the virtual clock to it and derive this request's id stream
        from (seed, sandbox, number), so a seeded run is byte-identical and two replicas or
        two forks never draw the same ids."""
        self._at_tick(self._next_tick())

    def _at_tick(self, tick: int) -> None:
        assert isinstance(self.clock, _WorldClock)
        self.clock.at(tick)
        seed = self._stream_seed(tick)
        self.rng.seed(seed)
        if self._faker is not None:
            self._faker.seed_instance(seed)

    def _stream_seed(self, tick: int) -> int:
        digest = hashlib.sha256(f"{self._stream_base}:{self.name}:{tick}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    @property
    def faker(self) -> Any:
        """A Faker on the world's stream (created on first use: Faker is slow to load)."""
        if self._faker is None:
            from faker import Faker

            self._faker = Faker("en_US")
            self._faker.seed_instance(self.rng.getrandbits(64))
        return self._faker

    # reading

    def get(self, collection: str, id: str) -> dict[str, Any] | None:
        raw = self._get_raw(collection, id)
        return json.loads(raw) if raw is not None else None

    def list(self, collection: str) -> builtins.list[dict[str, Any]]:
        """All objects of a collection, oldest first. O(collection): list endpoints page
        with :meth:`scan` instead."""
        return builtins.list(self.scan(collection))

    def scan(self, collection: str, *, after: str | None = None,
             reverse: bool = False) -> Iterator[dict[str, Any]]:
        """Objects in creation order (newest first with ``reverse``), starting after the
        object ``after``; lazy, so a page of ten reads about ten objects."""
        txn = self._txn
        pending = ([k[1] for k in txn.created if k[0] == collection] if txn is not None
                   else [])
        if reverse:
            if after is None or after in pending:
                head = pending[:pending.index(after)] if after is not None else pending
                yield from self._pending(collection, reversed(head))
                after = None
            yield from self._stored(collection, after, True)
        else:
            if after is None or after not in pending:
                yield from self._stored(collection, after, False)
                tail = pending
            else:
                tail = pending[pending.index(after) + 1:]
            yield from self._pending(collection, tail)

    def _stored(self, collection: str, after: str | None,
                reverse: bool) -> Iterator[dict[str, Any]]:
        txn = self._txn
        for id, raw in self._scan_raw(collection, after=after, reverse=reverse):
            bridge.pause()  # a long scan takes turns with other sandboxes' requests
            if txn is not None and (collection, id) in txn.writes:
                pending = txn.writes[(collection, id)]
                if pending is None or (collection, id) in txn.created:
                    continue
                raw = pending
            yield json.loads(raw)

    def _pending(self, collection: str, ids: Any) -> Iterator[dict[str, Any]]:
        txn = self._txn
        for id in ids:
            raw = txn.writes.get((collection, id)) if txn is not None else None
            if raw is not None:
                yield json.loads(raw)

    def count(self, collection: str) -> int:
        delta = self._txn.counts.get(collection, 0) if self._txn is not None else 0
        return self._count(collection) + delta

    def collections(self) -> builtins.list[str]:
        names = set(self._collection_names())
        if self._txn is not None:
            names.update(c for c, _ in self._txn.writes)
        return sorted(n for n in names if self.count(n) > 0)

    def _exists_for_write(self, collection: str, id: str) -> bool:
        """Whether a put replaces an object (a backend may answer without a round trip,
        provided the commit then checks the answer)."""
        return self._get_raw(collection, id) is not None

    def _get_raw(self, collection: str, id: str) -> str | None:
        txn = self._txn
        if txn is not None and (collection, id) in txn.writes:
            return txn.writes[(collection, id)]
        return self._read(collection, id)

    # writing

    @contextmanager
    def transaction(self) -> Iterator[builtins.list[Change]]:
        """Group the changes of one request; on an exception none of them is applied.
        Raises :class:`Conflict` at the end when another writer got in first (only with a
        shared store); :meth:`atomically` retries for you."""
        with self.lock:
            if self._txn is not None:
                yield self._txn.changes
                return
            txn = self._txn = Txn()
            self._begin(txn)
            try:
                yield txn.changes
            except BaseException:
                self._txn = None
                self._abort(txn)
                raise
            self._txn = None
            self._commit(txn)

    def atomically(self, fn: Callable[[builtins.list[Change]], T]) -> T:
        """Run ``fn(changes)`` in a transaction, again from the start (up to
        :data:`RETRIES` times, after a random pause that grows with each conflict) when a
        concurrent writer conflicts with it. Only an optimistic backend (Redis) conflicts;
        the proxy runs its requests' transactions off the event loop."""
        with self.lock:
            outer, self._retried = self._retried, True  # a backend may be optimistic here
            try:
                for attempt in range(RETRIES):
                    try:
                        with self.transaction() as changes:
                            result = fn(changes)
                        return result
                    except Conflict:
                        # writers that collided retry at random moments, growing apart
                        # (full jitter), so none starves while the others keep winning
                        bridge.sleep(random.uniform(0, min(BACKOFF_CAP, 0.001 * 2 ** attempt)))
            finally:
                self._retried = outer
        raise WorldError(f"sandbox {self.name!r}: gave up after {RETRIES} conflicting "
                         "concurrent writes")

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
        mark = txn.mark()
        try:
            yield
        except BaseException:
            txn.undo_to(mark)
            raise

    def put(self, collection: str, obj: dict[str, Any], id: str | None = None) -> dict[str, Any]:
        """Create or replace an object (stored as a copy); its id is ``id`` or ``obj["id"]``.
        Returns ``obj`` itself."""
        key = id if id is not None else obj.get("id")
        if not isinstance(key, str) or not key:
            raise WorldError(f"cannot store an object without a string id in {collection!r}")
        if not isinstance(collection, str) or not collection:
            raise WorldError("a collection needs a name")
        raw = dumps(obj)
        with self.transaction():
            txn = self._txn
            assert txn is not None
            exists = self._exists_for_write(collection, key)
            k = (collection, key)
            if not exists:
                txn.created.pop(k, None)
                txn.created[k] = None
                txn.counts[collection] = txn.counts.get(collection, 0) + 1
            txn.writes[k] = raw
            txn.changes.append(Change("update" if exists else "create", collection, key,
                                      json.loads(raw), len(raw)))
        return obj

    def delete(self, collection: str, id: str) -> bool:
        with self.transaction():
            txn = self._txn
            assert txn is not None
            if self._get_raw(collection, id) is None:
                return False
            txn.writes[(collection, id)] = None
            txn.created.pop((collection, id), None)
            txn.counts[collection] = txn.counts.get(collection, 0) - 1
            txn.changes.append(Change("delete", collection, id))
        return True

    def next(self, counter: str) -> int:
        """The next number of a named counter (1, 2, 3, ...), e.g. issue numbers per repo."""
        with self.transaction():
            txn = self._txn
            assert txn is not None
            value = (txn.counters[counter] if counter in txn.counters
                     else self._counter(counter)) + 1
            txn.counters[counter] = value
        return value

    # limits

    def check_room(self, max_objects: int, max_bytes: int,
                   objects_by: str = "--max-world-objects",
                   bytes_by: str = "--max-world-bytes") -> None:
        """Raise :class:`~guard.limits.LimitExceeded` when the pending transaction would
        take the world past ``max_objects`` objects or ``max_bytes`` bytes of JSON (0: no
        limit; every collection counts, a provider's events too). A transaction that adds
        no object does not meet the object limit, one that adds no bytes not the byte limit;
        one that deletes (an object, or Stripe's ``deleted: true``) may go a tenth over
        both, so that a full world can be cleaned up although deletions leave events.
        ``objects_by`` and ``bytes_by`` name where each limit comes from, for the message.
        A shared store (Redis) raises it at the commit instead, where the totals are
        checked in the same atomic step as the writes, so concurrent writers on several
        replicas cannot pass a limit together either.

        >>> from guard.world.memory import MemoryStore
        >>> w = MemoryStore(seed=1).world("s")
        >>> with w.transaction():
        ...     _ = w.put("notes", {"id": "n1"})
        ...     w.check_room(1, 0)
        >>> with w.transaction():
        ...     _ = w.put("notes", {"id": "n2"})
        ...     w.check_room(1, 0)
        Traceback (most recent call last):
        ...
        guard.limits.LimitExceeded: guard.limit.world: sandbox 's' holds 1 objects; 1 more \
would pass the limit (--max-world-objects 1)
        """
        txn = self._txn
        if txn is None or not txn.writes or not (max_objects or max_bytes):
            return
        added = sum(txn.counts.values())
        grown = 0
        for (collection, id), raw in txn.writes.items():
            old = self._read(collection, id)
            grown += (len(raw) if raw is not None else 0) - (len(old) if old is not None else 0)
        if added <= 0 and grown <= 0:
            return
        if any(c.op == "delete" or (c.object or {}).get("deleted") is True
               for c in txn.changes):
            max_objects += max(1, max_objects // 10) if max_objects else 0
            max_bytes += max(4096, max_bytes // 10) if max_bytes else 0
        self._need_room(Room(max_objects, max_bytes, added, grown, objects_by, bytes_by))

    def _need_room(self, room: Room) -> None:
        """Check ``room`` against the committed totals now (a backend that shares worlds
        checks it inside its commit instead, atomically with the writes)."""
        error = room.refusal(self.name, *self._totals())
        if error is not None:
            raise error

    def _totals(self) -> tuple[int, int]:
        """The committed objects and their bytes (of JSON), over every collection."""
        names = self._collection_names()
        return sum(self._count(c) for c in names), 0

    # snapshots as data (``guard state export`` format)

    def snapshot(self) -> dict[str, Any]:
        """The whole world as a snapshot document (O(world): for export, not for forks)."""
        return {
            "v": SNAPSHOT_VERSION,
            "sandbox": self.name,
            "collections": {c: dict(self._scan_pairs(c)) for c in self.collections()},
            "counters": self._counters(),
        }

    def snapshot_json(self) -> bytes:
        """:meth:`snapshot` (what is committed) as JSON text, each object as stored (ASCII
        JSON, not decoded and encoded again), taking turns as scans do: what guard.internal
        answers an agent asking for its whole world."""
        parts = [f'{{"v":{SNAPSHOT_VERSION},"sandbox":{dumps(self.name)},"collections":{{']
        for n, collection in enumerate(sorted(self._collection_names())):
            parts.append(("," if n else "") + dumps(collection) + ":{")
            sep = ""
            for id, raw in self._scan_raw(collection, after=None, reverse=False):
                bridge.pause()
                parts.append(f"{sep}{dumps(id)}:{raw}")
                sep = ","
            parts.append("}")
        parts.append('},"counters":' + dumps(self._counters()) + "}")
        return "".join(parts).encode()

    def _scan_pairs(self, collection: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for id, raw in self._scan_raw(collection, after=None, reverse=False):
            bridge.pause()
            yield id, json.loads(raw)

    @abstractmethod
    def load(self, snapshot: dict[str, Any], *, replace: bool = True) -> None:
        """Load a snapshot document (from :meth:`snapshot` or a seed file)."""

    # what a backend provides

    @abstractmethod
    def _read(self, collection: str, id: str) -> str | None: ...

    @abstractmethod
    def _scan_raw(self, collection: str, *, after: str | None,
                  reverse: bool) -> Iterator[tuple[str, str]]: ...

    @abstractmethod
    def _count(self, collection: str) -> int: ...

    @abstractmethod
    def _collection_names(self) -> builtins.list[str]: ...

    @abstractmethod
    def _counter(self, name: str) -> int: ...

    @abstractmethod
    def _counters(self) -> dict[str, int]: ...

    @abstractmethod
    def _next_tick(self) -> int: ...

    def _begin(self, txn: Txn) -> None:  # noqa: B027 (a hook; most backends need none)
        """A transaction starts (the Redis backend notes what its cache is valid for)."""

    def _abort(self, txn: Txn) -> None:  # noqa: B027
        """A transaction was dropped."""

    @abstractmethod
    def _commit(self, txn: Txn) -> None:
        """Apply ``txn`` atomically, or raise :class:`Conflict` and apply nothing."""


def check_snapshot(data: Any, where: str = "snapshot") -> dict[str, Any]:
    """Validate a snapshot document (an upload, a seed file) before anything is loaded."""
    if not isinstance(data, dict) or data.get("v") != SNAPSHOT_VERSION:
        raise WorldError(f"{where}: not a version {SNAPSHOT_VERSION} world snapshot")
    collections = data.get("collections")
    if not isinstance(collections, dict):
        raise WorldError(f"{where}: a world snapshot needs a 'collections' object")
    for name, objects in collections.items():
        if not isinstance(objects, dict):
            raise WorldError(f"{where}: collection {name!r} must map ids to objects")
        for key, obj in objects.items():
            if not isinstance(obj, dict):
                raise WorldError(f"{where}: {name}/{key} is not an object")
    counters = data.get("counters") or {}
    if not isinstance(counters, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in counters.values()):
        raise WorldError(f"{where}: 'counters' must map names to integers")
    tick = data.get("tick", 0)
    if not isinstance(tick, int) or isinstance(tick, bool) or tick < 0:
        raise WorldError(f"{where}: 'tick' must be a non-negative integer")
    return data


def check_snapshot_id(sid: str) -> str:
    if not isinstance(sid, str) or not SNAPSHOT_ID.match(sid):
        raise WorldError(f"invalid snapshot id {sid!r}: use 1-128 of A-Z a-z 0-9 . _ : -")
    return sid


class WorldStore(ABC):
    """Every sandbox's world, and the control plane's operations on them.

    ``seed`` makes every world's ids, Faker data and clock a function of the seed, the
    sandbox name and the request number. ``initial`` (a snapshot document) is what a world
    that :meth:`world` opens for the first time starts from, and what :meth:`reset` returns
    to. Forks, snapshots and restores are O(1): worlds share their objects copy-on-write.
    """

    seed: int | None
    initial: dict[str, Any] | None
    deliveries: DeliveryQueue  # what is to be delivered later (Stripe webhooks), any replica
    blocking = False  # True when its calls wait on the network: the proxy calls it in threads

    @abstractmethod
    def world(self, sandbox: str) -> World:
        """The sandbox's world; created (from ``initial``) when it does not exist yet."""

    def flush(self, world: World) -> None:  # noqa: B027 (only --state journals)
        """Make the world's committed changes durable (the ``--state`` journal)."""

    @abstractmethod
    def exists(self, sandbox: str) -> bool: ...

    @abstractmethod
    def sandboxes(self) -> builtins.list[str]: ...

    @abstractmethod
    def create(self, sandbox: str, *, snapshot: str | None = None, ttl: float | None = None,
               meta: dict[str, Any] | None = None) -> WorldInfo:
        """A new world: empty (or ``initial``), or the snapshot ``snapshot``. Raises
        :class:`~guard.errors.WorldExists`."""

    @abstractmethod
    def fork(self, source: str, new: str, *, ttl: float | None = None,
             meta: dict[str, Any] | None = None) -> WorldInfo:
        """A new world that starts as an exact copy of ``source`` now: objects, counters,
        request number, event history. Later changes to either never show in the other."""

    @abstractmethod
    def snapshot(self, sandbox: str, *, id: str | None = None,
                 meta: dict[str, Any] | None = None) -> SnapshotInfo:
        """An immutable snapshot of the world now (shared with whatever starts from it)."""

    @abstractmethod
    def snapshots(self) -> builtins.list[SnapshotInfo]: ...

    @abstractmethod
    def snapshot_info(self, sid: str) -> SnapshotInfo:
        """Raises :class:`~guard.errors.NoSuchSnapshot`."""

    @abstractmethod
    def export_snapshot(self, sid: str) -> dict[str, Any]:
        """The snapshot as a document (``guard state export`` format)."""

    @abstractmethod
    def import_snapshot(self, data: dict[str, Any], *, id: str | None = None,
                        meta: dict[str, Any] | None = None) -> SnapshotInfo:
        """A snapshot from a document (an upload); validated first."""

    @abstractmethod
    def delete_snapshot(self, sid: str) -> bool: ...

    def seed_snapshot(self, name: str) -> SnapshotInfo:
        """The seed file ``name`` (``fixtures/seeds/NAME.json``, or a path) as the shared
        snapshot ``seed:NAME``, loaded on first use."""
        sid = check_snapshot_id(f"seed:{name}")
        try:
            return self.snapshot_info(sid)
        except NoSuchSnapshot:
            return self.import_snapshot(files.read(name), id=sid, meta={"seed": name})

    @abstractmethod
    def restore(self, sandbox: str, sid: str) -> WorldInfo:
        """The world becomes the snapshot (its event history stays; its version goes on)."""

    @abstractmethod
    def reset(self, sandbox: str) -> WorldInfo:
        """The world goes back to empty (or to ``initial``)."""

    @abstractmethod
    def delete(self, sandbox: str) -> bool:
        """The world and its event history are gone."""

    @abstractmethod
    def info(self, sandbox: str) -> WorldInfo:
        """Raises :class:`~guard.errors.NoSuchWorld`."""

    @abstractmethod
    def update_meta(self, sandbox: str, **values: Any) -> WorldInfo:
        """Set free-form JSON metadata (a value of None removes the key)."""

    @abstractmethod
    def diff(self, sandbox: str, since: str | int) -> dict[str, Any]:
        """What changed in the world since a snapshot id or a world version (the backends
        answer with :func:`guard.world.diff.diff`, which reads this interface)."""

    @abstractmethod
    def index_set(self, kind: str, key: str, sandbox: str | None) -> None:
        """Map ``key`` to a sandbox name in the lookup table ``kind`` (None removes it):
        how the control plane finds a sandbox by token hash or address on every replica."""

    @abstractmethod
    def index_get(self, kind: str, key: str) -> str | None: ...

    @abstractmethod
    def expire(self, now: float | None = None) -> builtins.list[str]:
        """Delete the worlds idle for longer than their ttl; returns their names."""

    @abstractmethod
    def add_event(self, sandbox: str, event: dict[str, Any]) -> int:
        """Append to the sandbox's event history; returns the event's id (1, 2, 3 ...)."""

    def add_event_line(self, sandbox: str, event: dict[str, Any], line: bytes) -> int:
        """:meth:`add_event` for an event that is also given as its JSON (``line``: one
        JSON object equal to ``event``, without an ``id``, as the audit log wrote it): a
        store that keeps events as JSON keeps these bytes rather than serializing again."""
        return self.add_event(sandbox, event)

    @abstractmethod
    def events(self, sandbox: str, after: int = 0,
               limit: int = 100) -> builtins.list[dict[str, Any]]:
        """History events with an id above ``after``, oldest first, each ``{"id": n, ...}``."""

    @abstractmethod
    async def wait_events(self, sandbox: str, after: int,
                          timeout: float) -> builtins.list[dict[str, Any]]:
        """:meth:`events`, waiting up to ``timeout`` seconds for the first one."""

    def describe(self) -> str:
        """Where the worlds are, for people (no secrets: a URL's password is left out)."""
        return "this process's memory"

    def close(self) -> None:  # noqa: B027
        """Release connections and background work."""

    # for the diff: what the backend remembers

    @abstractmethod
    def _changes_since(self, sandbox: str,
                       since: str | int) -> builtins.list[tuple[str, str, str | None]] | None:
        """(collection, id, value before) for every object changed since the version or
        snapshot ``since``, first change first; None when the world no longer knows
        (then the diff compares whole worlds)."""

    @abstractmethod
    def _view(self, sid: str) -> World:
        """A read-only world over a snapshot."""
