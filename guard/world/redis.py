"""The Redis world store (``guard run --store redis://HOST:PORT/DB``): worlds shared by
every guard worker and replica, copy-on-write like the in-process store (the same layers,
kept in Redis hashes; see :mod:`guard.world.lua` for the keys).

Transactions are optimistic. A process reads objects (through a small cache of what it
read or wrote) and buffers its writes; the commit script then checks, atomically inside
Redis, that nothing the transaction read has changed since (when another writer has
committed meanwhile: each object's value, each counter, and the write count of each
collection it scanned), and applies every write or none. A conflicting transaction is
run again from the start by :meth:`World.atomically`. So two replicas serving one
sandbox behave as one account: one object per idempotency key, no lost field when two
requests update one object, one order of events and outbox records.

Every request sends at least its commit (which also checks a read-only request's reads),
so a replica never answers from a stale cache. Redis being down fails the request
closed with :class:`~guard.errors.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import hashlib
import json
import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import redis as redis_py
import redis.asyncio as aredis
from redis.commands.core import Script
from redis.exceptions import ClusterDownError, RedisClusterException

from guard.errors import NoSuchSnapshot, NoSuchWorld, StoreUnavailable, WorldError, WorldExists
from guard.world import bridge, lua, resp
from guard.world.diff import diff
from guard.world.redis_deliveries import RedisQueue
from guard.world.store import (
    CHANGELOG_KEEP,
    EVENTS_KEEP,
    Conflict,
    Room,
    SnapshotInfo,
    Txn,
    World,
    WorldInfo,
    WorldStore,
    check_snapshot,
    check_snapshot_id,
    dumps,
)

log = logging.getLogger("guard")

CACHE_MAX = 4096  # objects one process remembers per world (checked at every commit)
PAGE = 64  # objects per scan round trip
BUDGET = 2048  # index entries one scan call may examine (bounds the script's run time)
TIMEOUT = 5.0  # seconds: a Redis that answers slower than this counts as down
THREADS = 8  # blocking calls of requests run on the loop (_call), at once per process


def _layer() -> str:
    return secrets.token_hex(8)


def _key(sandbox: str) -> str:
    return quote(sandbox, safe="")


class RedisWorld(World):
    """A world in Redis, as one process sees it."""

    blocking = True

    def __init__(self, store: RedisStore, name: str, source: str | None = None) -> None:
        super().__init__(name, store.seed)
        self._store = store
        self._src = source or _key(name)  # "s:SID" for a read-only snapshot view
        self._cache: dict[tuple[str, ...], Any] = {}
        self._pages: dict[str, set[tuple[str, ...]]] = {}  # collection -> its cached pages
        self._cache_version = -1
        self._txn_base = -1
        self._reads: dict[tuple[str, str], str | None] = {}
        self._creads: dict[str, int] = {}
        self._scans: dict[str, int] = {}
        self._tick = 0
        self._blind = True  # puts of unseen ids assume "new", checked at commit

    # reads, through the cache inside a transaction

    def _forget(self) -> None:
        self._cache.clear()
        self._pages.clear()

    def _keep_checked(self, reads: dict[tuple[str, str], str | None],
                      scans: dict[str, int]) -> None:
        """After a commit that others' commits preceded: the cache keeps the objects the
        transaction read (as they were, and are: the commit compared them) and the list
        pages of the collections it scanned at the change count the commit confirmed; the
        rest goes. So two processes serving one sandbox do not send each other's next
        reads of untouched collections (a Stripe create's webhook endpoints) to Redis."""
        kept: dict[tuple[str, ...], Any] = {("o", c, i): raw for (c, i), raw in reads.items()}
        pages: dict[str, set[tuple[str, ...]]] = {}
        for c, cver in scans.items():
            for page in self._pages.get(c, ()):
                entry = self._cache.get(page)
                if entry is not None and entry[0] == cver:
                    kept[page] = entry
                    pages.setdefault(c, set()).add(page)
        self._cache, self._pages = kept, pages

    def _seen(self, version: int) -> None:
        """A fetch saw the world at ``version``: what the cache holds is valid only if
        nobody else has committed since."""
        if version != self._cache_version:
            self._forget()
            self._cache_version = version
            self._txn_base = -1  # this transaction's earlier reads must be checked one by one

    def _read(self, collection: str, id: str) -> str | None:
        key = (collection, id)
        if self._txn is not None and key in self._reads:
            return self._reads[key]
        raw: str | None
        if self._txn is not None and ("o", collection, id) in self._cache:
            raw = self._cache[("o", collection, id)]
        else:
            version, value = self._store._run(lua.GET, self._src, collection, id)
            self._seen(int(version))
            raw = value if isinstance(value, str) else None
            if len(self._cache) < CACHE_MAX:
                self._cache[("o", collection, id)] = raw
        if self._txn is not None:
            self._reads[key] = raw
        return raw

    def _exists_for_write(self, collection: str, id: str) -> bool:
        key = (collection, id)
        txn = self._txn
        if (txn is None or key in txn.writes or key in self._reads or not self._blind
                or not self._retried or ("o", collection, id) in self._cache):
            return self._get_raw(collection, id) is not None
        # An id this process has not seen: most likely a new object (a fresh random id).
        # Assume so without a round trip; the commit checks it is still absent, and after
        # a conflict the next attempt asks Redis first.
        self._reads[key] = None
        return False

    def _scan_raw(self, collection: str, *, after: str | None,
                  reverse: bool) -> Iterator[tuple[str, str]]:
        cursor_id, cursor_seq = after or "", -1
        while True:
            page = ("scan", collection, cursor_id, str(cursor_seq), "1" if reverse else "0")
            cached = self._cache.get(page) if self._txn is not None else None
            if cached is not None:
                cver, nxt, items = cached
                self._scans.setdefault(collection, cver)
            else:
                reply = self._store._run(lua.SCAN, self._src, collection, cursor_id,
                                         cursor_seq, 1 if reverse else 0, PAGE, BUDGET)
                version, cver, nxt = int(reply[0]), int(reply[1]), int(reply[2])
                items = reply[3:]
                if version >= 0 and not self._src.startswith("s:"):
                    self._seen(version)
                    if self._txn is not None:
                        self._scans.setdefault(collection, cver)
                    if len(self._cache) < CACHE_MAX:
                        self._cache[page] = (cver, nxt, items)
                        self._pages.setdefault(collection, set()).add(page)
            for i in range(0, len(items), 2):
                yield items[i], items[i + 1]
            if nxt < 0:
                return
            cursor_id, cursor_seq = "", nxt

    def _count(self, collection: str) -> int:
        counts = self._world_hash("cnt")
        if self._txn is not None:
            self._scans.setdefault(collection, self._world_cver(collection))
        return int(counts.get(collection, 0))

    def _collection_names(self) -> builtins.list[str]:
        return [c for c, n in self._world_hash("cnt").items() if int(n) > 0]

    def _need_room(self, room: Room) -> None:
        # checked by the commit script against the totals it is about to change: no round
        # trip now, and concurrent writers on several replicas cannot pass a limit together
        assert self._txn is not None
        self._txn.room = room

    def _counter(self, name: str) -> int:
        if self._txn is not None and name in self._creads:
            return self._creads[name]
        value = int(self._world_hash("ctr").get(name, 0))
        if self._txn is not None:
            self._creads[name] = value
        return value

    def _counters(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._world_hash("ctr").items()}

    def _world_hash(self, name: str) -> dict[str, str]:
        if self._src.startswith("s:"):
            field = {"cnt": "counts", "ctr": "counters", "sz": "sizes"}[name]
            raw = self._store._call(lambda r: r.hget(self._store.prefix + self._src, field))
            return {k: str(v) for k, v in json.loads(raw or "{}").items()}
        version, flat = self._store._run(lua.HASH, self._src, name)
        self._seen(int(version or -1))
        return dict(zip(flat[::2], flat[1::2], strict=True))

    def _world_cver(self, collection: str) -> int:
        return int(self._store._cmd("HGET", f"{self._store.prefix}w:{self._src}:cv",
                                    collection) or 0)

    # the request number

    def _next_tick(self) -> int:
        if self._seed is None:  # real clock: the id stream needs only to be this process's
            self._tick += 1
            return self._tick
        tick = int(self._store._run(lua.TICK, self._src))
        if tick < 0:
            self._store._open(self.name)
            tick = int(self._store._run(lua.TICK, self._src))
        return tick

    # transactions

    def _begin(self, txn: Txn) -> None:
        self._reads, self._creads, self._scans = {}, {}, {}
        self._txn_base = self._cache_version

    def _abort(self, txn: Txn) -> None:
        self._reads, self._creads, self._scans = {}, {}, {}

    def _commit(self, txn: Txn) -> None:
        if self._src.startswith("s:"):
            raise WorldError("a snapshot cannot be changed")
        values: builtins.list[str] = []  # ARGV[4...]: objects travel as themselves

        def ref(raw: str | None) -> int | bool:
            if raw is None:
                return False
            values.append(raw)
            return len(values) + 3

        creations = [k for k in txn.created if txn.writes.get(k) is not None]
        writes = [[c, i, ref(raw)]
                  for (c, i), raw in txn.writes.items() if (c, i) not in txn.created]
        writes += [[c, i, ref(txn.writes[(c, i)])] for c, i in creations]
        payload = {
            "base": self._txn_base,
            "reads": [[c, i, ref(raw)] for (c, i), raw in self._reads.items()],
            "creads": [[k, v] for k, v in self._creads.items()],
            "scans": [[k, v] for k, v in self._scans.items()],
            "writes": writes,
            "counters": [[k, v] for k, v in txn.counters.items()],
            "room": False if txn.room is None else [
                txn.room.max_objects, txn.room.max_bytes, txn.room.added, txn.room.grown],
            "keep": CHANGELOG_KEEP,
            "now": time.time(),
        }
        base = self._txn_base
        reads, scans = self._reads, self._scans
        self._reads, self._creads, self._scans = {}, {}, {}
        reply = self._store._run(lua.COMMIT, self._src, json.dumps(payload), *values)
        status = reply[0]
        if status == "gone":  # deleted meanwhile: open it anew and run again
            self._forget()
            self._cache_version = -1
            self._store._open(self.name)
            raise _conflict(self.name)
        version = int(reply[1])
        if status == "room":  # nothing written: the world has no room for this
            assert txn.room is not None
            self._forget()
            self._cache_version = -1
            error = txn.room.refusal(self.name, int(reply[2]), int(reply[3]))
            raise error if error is not None else WorldError("the world limit check failed")
        if status == "conflict":
            self._forget()
            self._cache_version = -1
            self._blind = False  # the next attempt reads before it assumes
            raise _conflict(self.name)
        self._blind = True
        wrote = bool(payload["writes"] or payload["counters"])  # (else the version stays)
        if base < 0 or version != base + wrote:
            # others committed since the cache was filled: keep only what this commit
            # checked, which is current as of it (the script compares every read and
            # scan when the base is not the version), and drop the rest
            self._keep_checked(reads, scans)
        for c in {c for c, _ in txn.writes}:  # our own writes: those collections' pages
            for page in self._pages.pop(c, ()):
                self._cache.pop(page, None)
        self._cache_version = version
        for (c, i), raw in txn.writes.items():
            key = ("o", c, i)
            if key in self._cache or len(self._cache) < CACHE_MAX:  # never left as it was
                self._cache[key] = raw

    def load(self, snapshot: dict[str, Any], *, replace: bool = True) -> None:
        check_snapshot(snapshot)
        if replace:
            sid = "load:" + secrets.token_hex(8)
            self._store.import_snapshot(snapshot, id=sid)
            try:
                self._store.restore(self.name, sid)
            finally:
                self._store.delete_snapshot(sid)
            return
        with self.transaction():
            for name, objects in snapshot["collections"].items():
                for key, obj in objects.items():
                    self.put(name, obj, key)
            for name, value in (snapshot.get("counters") or {}).items():
                assert self._txn is not None
                self._txn.counters[name] = value


def _conflict(name: str) -> Conflict:
    return Conflict(f"sandbox {name!r}: a concurrent writer changed what this request read")


def _split(url: str, *names: str) -> tuple[str, dict[str, str]]:
    """``redis://h:p/0?prefix=team-a:`` -> (the URL without those parameters, them)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    rest = urlencode([(k, v) for k, v in query if k not in names])
    kept = {k: v for k, v in query if k in names}
    if not parts.netloc:  # unix:///run/redis.sock: urlunsplit would drop the empty host
        return f"{parts.scheme}://{parts.path}" + (f"?{rest}" if rest else ""), kept
    return urlunsplit(parts._replace(query=rest)), kept


def hash_tag(prefix: str) -> str | None:
    """The part of ``prefix`` Redis Cluster hashes (its first ``{...}``, not empty), or None.

    >>> hash_tag("{team-a}:"), hash_tag("team-a:"), hash_tag("{}x")
    ('team-a', None, None)
    """
    start = prefix.find("{")
    end = prefix.find("}", start + 1) if start >= 0 else -1
    return prefix[start + 1:end] if end > start + 1 else None


def _pipe(r: redis_py.Redis, calls: builtins.list[tuple[Any, ...]]) -> builtins.list[Any]:
    p = r.pipeline(transaction=True)
    for name, *args in calls:
        getattr(p, name)(*args)
    return p.execute()


class RedisStore(WorldStore):
    """Worlds in Redis. ``prefix`` namespaces the keys (several guards can share a Redis
    with different prefixes)."""

    blocking = True

    def __init__(self, url: str, *, seed: int | None = None,
                 initial: dict[str, Any] | None = None, prefix: str | None = None) -> None:
        url, params = _split(url, "prefix", "cluster")
        self.url = url
        self.seed = seed
        # ?cluster=yes: a Redis Cluster. Every key of this store is then in the one slot of
        # the prefix's hash tag, so every script runs on one node (see docs/scale.md)
        self.cluster = params.get("cluster", "no").lower() in ("yes", "1", "true")
        self.prefix = prefix or params.get("prefix") or (
            "{guard}:" if self.cluster else "guard:")
        if self.cluster and hash_tag(self.prefix) is None:
            raise WorldError(f"a Redis Cluster store needs a hash tag in its key prefix "
                             f"(got {self.prefix!r}): every key of a store must be in one "
                             "slot, e.g. ?prefix={team-a}:")
        self.initial = check_snapshot(initial, "initial world") if initial else None
        try:
            self._redis: Any = (redis_py.RedisCluster if self.cluster else redis_py.Redis
                                ).from_url(url, decode_responses=True, socket_timeout=TIMEOUT,
                                           socket_connect_timeout=TIMEOUT)
        except ValueError as e:
            raise WorldError(f"bad Redis URL {url!r}: {e}") from e
        except (redis_py.RedisError, RedisClusterException) as e:  # a Cluster is asked now
            raise StoreUnavailable(f"the Redis Cluster at {url!r} is unavailable: "
                                   f"{e}") from e
        self._scripts: dict[str, Script] = {}
        self._ascripts: dict[str, Any] = {}  # the same for the non-blocking clients
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None  # see _call
        self._worlds: dict[str, RedisWorld] = {}
        self._initial_sid: str | None = None
        self._waiters: dict[str, builtins.list[asyncio.Future[None]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._listener_loop: asyncio.AbstractEventLoop | None = None
        self._watchers: builtins.list[Callable[[str, int], None]] = []
        # non-blocking clients, one per event loop (get_async)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = \
            weakref.WeakKeyDictionary()
        self._resp: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, resp.Client] = \
            weakref.WeakKeyDictionary()
        self.deliveries = RedisQueue(self.prefix, self._run_keys, self._call)

    # plumbing

    def _call(self, fn: Any) -> Any:
        """``fn(client)`` with the blocking client. A request that runs on the event loop
        (:mod:`guard.world.bridge`) has it run in one of this store's threads instead, so
        the loop serves other flows meanwhile; its scripts go by :meth:`_run_async`."""
        if bridge.bridged():
            return bridge.wait(self._call_in_thread(fn))
        try:
            return fn(self._redis)
        except (redis_py.ConnectionError, redis_py.TimeoutError, ClusterDownError,
                RedisClusterException) as e:
            raise self._unavailable(e) from e
        except redis_py.RedisError as e:
            raise self._failed(e) from e

    async def _call_in_thread(self, fn: Any) -> Any:
        if self._threads is None:
            self._threads = concurrent.futures.ThreadPoolExecutor(THREADS, "guard-store")
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._call, fn)

    def _unavailable(self, e: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"the world store at {self._where()} is unavailable: {e}")

    def _failed(self, e: BaseException) -> WorldError:
        return WorldError(f"the world store at {self._where()} failed: {e}")

    def _aclient(self) -> Any:
        """This event loop's non-blocking client (one per loop)."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            cls = aredis.RedisCluster if self.cluster else aredis.Redis
            client = self._async[loop] = cls.from_url(
                self.url, decode_responses=True, socket_timeout=TIMEOUT,
                socket_connect_timeout=TIMEOUT)
        return client

    def _lean(self) -> resp.Client | None:
        """This event loop's pipelined connection (guard.world.resp), for a single Redis
        at a redis:// or unix:// URL; None for the others (TLS, Cluster)."""
        if self.cluster or not resp.usable(self.url):
            return None
        loop = asyncio.get_running_loop()
        client = self._resp.get(loop)
        if client is None:
            client = self._resp[loop] = resp.Client(self.url, TIMEOUT)
        return client

    async def get_async(self, key: str) -> str | None:
        """``GET key`` from the event loop with a non-blocking client (one per loop), so a
        short read costs no thread hop; a slow or absent Redis holds only the awaiting
        flow. Fails as :meth:`_call` does."""
        lean = self._lean()
        value = await self._mapped(lean.execute("GET", key) if lean is not None
                                   else self._aclient().get(key))
        return value if isinstance(value, str) else None

    async def _mapped(self, pending: Awaitable[Any]) -> Any:
        """``await pending``, a non-blocking client's command: fails as :meth:`_call`."""
        try:
            return await pending
        except (redis_py.ConnectionError, redis_py.TimeoutError, ClusterDownError,
                RedisClusterException, OSError) as e:
            raise self._unavailable(e) from e
        except redis_py.RedisError as e:
            raise self._failed(e) from e

    def _cmd(self, *args: Any) -> Any:
        """One command whose reply redis-py passes through as Redis sent it (HGET, HSET,
        HDEL, EXISTS: not HGETALL, which it turns into a dict): from a request on the
        loop, with this loop's non-blocking client."""
        lean = self._lean() if bridge.bridged() else None
        if lean is not None:
            return bridge.wait(self._mapped(lean.execute(*args)))
        return self._call(lambda r: r.execute_command(*args))

    def _run(self, source: str, *args: Any) -> Any:
        """Run one of guard's scripts (guard.world.lua) with the store's prefix first."""
        return self._run_keys(source, [self.prefix] if self.cluster else [], self.prefix,
                              *args)  # a Cluster routes a script by its keys

    def _run_keys(self, source: str, keys: builtins.list[str], *args: Any) -> Any:
        """A script that names its keys (a Cluster-ready one; see redis_deliveries)."""
        if bridge.bridged() and not self.cluster:  # a Cluster's scripts go by a thread
            return bridge.wait(self._run_async(source, keys, args))
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis.register_script(source)
        return self._call(lambda r: script(keys=keys, args=list(args), client=r))

    async def _run_async(self, source: str, keys: builtins.list[str],
                         args: tuple[Any, ...]) -> Any:
        """:meth:`_run_keys` from the event loop, with its non-blocking client (EVALSHA,
        and the script itself if Redis does not have it yet). Fails as :meth:`_call`
        does."""
        lean = self._lean()
        if lean is not None:
            return await self._mapped(lean.script(source, keys, list(args)))
        client = self._aclient()
        script = self._ascripts.get(source)
        if script is None:
            script = self._ascripts[source] = client.register_script(source)
        return await self._mapped(script(keys=keys, args=list(args), client=client))

    def _where(self) -> str:
        if self.cluster:
            parts = urlsplit(self.url)
            return f"cluster {parts.hostname}:{parts.port or 6379}"
        kw = self._redis.connection_pool.connection_kwargs
        if "path" in kw:
            return f"unix:{kw['path']}"
        return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"

    def describe(self) -> str:
        return f"Redis at {self._where()} (key prefix {self.prefix!r})"

    def ping(self) -> None:
        """Raises :class:`StoreUnavailable` when Redis does not answer (readiness)."""
        self._call(lambda r: r.ping())

    def close(self) -> None:
        if self._listener is not None and not self._listener.done():
            self._listener.cancel()
        for loop, client in list(self._async.items()):
            if not loop.is_closed() and loop.is_running():
                loop.create_task(client.aclose())
        self._async.clear()
        for lean in list(self._resp.values()):
            lean.close()
        self._resp.clear()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self._redis.close()

    # worlds

    def world(self, sandbox: str) -> RedisWorld:
        w = self._worlds.get(sandbox)
        if w is None:
            self._open(sandbox)
            w = self._worlds[sandbox] = RedisWorld(self, sandbox)
        return w

    def _open(self, sandbox: str, ttl: float | None = None,
              meta: dict[str, Any] | None = None) -> bool:
        sid = self._initial_snapshot()
        created = self._run(lua.OPEN, _key(sandbox), _layer(), time.time(),
                            "" if ttl is None else ttl, dumps(meta or {}), sid or "")
        if int(created) < 0:  # the initial snapshot went away (FLUSHDB): import it again
            self._initial_sid = None
            return self._open(sandbox, ttl, meta)
        return bool(int(created))

    def _initial_snapshot(self) -> str | None:
        if self.initial is None:
            return None
        if self._initial_sid is None:
            sid = "initial:" + hashlib.sha256(dumps(self.initial).encode()).hexdigest()[:16]
            try:
                self.snapshot_info(sid)
            except NoSuchSnapshot:
                self.import_snapshot(self.initial, id=sid, meta={"initial": True})
            self._initial_sid = sid
        return self._initial_sid

    def exists(self, sandbox: str) -> bool:
        key = f"{self.prefix}w:{_key(sandbox)}:m"
        return bool(self._call(lambda r: r.exists(key)))

    def sandboxes(self) -> builtins.list[str]:
        return sorted(unquote(n) for n in self._call(
            lambda r: r.smembers(self.prefix + "worlds")))

    def create(self, sandbox: str, *, snapshot: str | None = None, ttl: float | None = None,
               meta: dict[str, Any] | None = None) -> WorldInfo:
        if snapshot is None:
            if not self._open(sandbox, ttl, meta):
                raise WorldExists(f"sandbox {sandbox!r} exists already")
            return self.info(sandbox)
        check_snapshot_id(snapshot)
        self._become(sandbox, snapshot, create=True, ttl=ttl, meta=meta)
        return self.info(sandbox)

    def _become(self, sandbox: str, sid: str, *, create: bool, ttl: float | None = None,
                meta: dict[str, Any] | None = None) -> None:
        result = int(self._run(lua.BECOME, _key(sandbox), sid, _layer(), time.time(),
                               1 if create else 0, "" if ttl is None else ttl,
                               dumps(meta or {})))
        if result == -1:
            raise NoSuchWorld(f"no sandbox {sandbox!r}")
        if result == -2:
            raise NoSuchSnapshot(f"no snapshot {sid!r}")
        if result == -3:
            raise WorldExists(f"sandbox {sandbox!r} exists already")
        w = self._worlds.get(sandbox)
        if w is not None:
            with w.lock:  # not under a request's transaction in another thread
                w._forget()
                w._cache_version = -1
                if w._seed is not None:
                    w._at_tick(self._meta_int(sandbox, "tick"))

    def _meta_int(self, sandbox: str, field: str) -> int:
        key = f"{self.prefix}w:{_key(sandbox)}:m"
        return int(self._call(lambda r: r.hget(key, field)) or 0)

    def fork(self, source: str, new: str, *, ttl: float | None = None,
             meta: dict[str, Any] | None = None) -> WorldInfo:
        result = self._run(lua.FORK, _key(source), _key(new), _layer(), _layer(), time.time(),
                           "" if ttl is None else ttl, dumps(meta or {}))
        if result == "nosource":
            raise NoSuchWorld(f"no sandbox {source!r}")
        if result == "exists":
            raise WorldExists(f"sandbox {new!r} exists already")
        return self.info(new)

    def restore(self, sandbox: str, sid: str) -> WorldInfo:
        check_snapshot_id(sid)
        self._become(sandbox, sid, create=False)
        return self.info(sandbox)

    def reset(self, sandbox: str) -> WorldInfo:
        self._become(sandbox, self._initial_snapshot() or "", create=False)
        return self.info(sandbox)

    def delete(self, sandbox: str) -> bool:
        self._worlds.pop(sandbox, None)
        return bool(int(self._run(lua.DELETE, _key(sandbox), "")))

    def info(self, sandbox: str) -> WorldInfo:
        key = f"{self.prefix}w:{_key(sandbox)}"
        m, counts, sizes = self._call(lambda r: _pipe(r, [
            ("hgetall", key + ":m"), ("hgetall", key + ":cnt"), ("hgetall", key + ":sz")]))
        if not m:
            raise NoSuchWorld(f"no sandbox {sandbox!r}")
        live = {c: int(n) for c, n in counts.items() if int(n) > 0}
        return WorldInfo(sandbox, int(m.get("version", 0)), float(m.get("created", 0)),
                         float(m.get("last", 0)),
                         float(m["ttl"]) if m.get("ttl") else None, live,
                         {c: int(sizes.get(c, 0)) for c in live}, int(m.get("evseq", 0)),
                         json.loads(m.get("meta") or "{}"))

    def update_meta(self, sandbox: str, **values: Any) -> WorldInfo:
        key = f"{self.prefix}w:{_key(sandbox)}:m"
        # A read-modify-write of one field, made safe against concurrent updates by WATCH.
        def update(r: redis_py.Redis) -> None:
            with r.pipeline(transaction=True) as p:  # (a Cluster's default is not)
                while True:
                    try:
                        p.watch(key)  # type: ignore[no-untyped-call]
                        if not p.exists(key):
                            raise NoSuchWorld(f"no sandbox {sandbox!r}")
                        meta = json.loads(p.hget(key, "meta") or "{}")
                        for k, v in values.items():
                            if v is None:
                                meta.pop(k, None)
                            else:
                                meta[k] = v
                        p.multi()
                        p.hset(key, "meta", dumps(meta))
                        p.execute()
                        return
                    except redis_py.WatchError:
                        continue

        self._call(update)
        return self.info(sandbox)

    def diff(self, sandbox: str, since: str | int) -> dict[str, Any]:
        return diff(self, sandbox, since)

    def index_set(self, kind: str, key: str, sandbox: str | None) -> None:
        name = f"{self.prefix}ix:{kind}"
        if sandbox is None:
            self._cmd("HDEL", name, key)
        else:
            self._cmd("HSET", name, key, sandbox)

    def index_get(self, kind: str, key: str) -> str | None:
        value = self._cmd("HGET", f"{self.prefix}ix:{kind}", key)
        return value if isinstance(value, str) else None

    def expire(self, now: float | None = None) -> builtins.list[str]:
        now = time.time() if now is None else now
        gone = []
        for name in self.sandboxes():
            if int(self._run(lua.DELETE, _key(name), now)):
                self._worlds.pop(name, None)
                gone.append(name)
        return gone

    # snapshots

    def snapshot(self, sandbox: str, *, id: str | None = None,
                 meta: dict[str, Any] | None = None) -> SnapshotInfo:
        sid = check_snapshot_id(id) if id is not None else "snap_" + secrets.token_hex(8)
        result = self._run(lua.SNAPSHOT, _key(sandbox), sid, _layer(), time.time(),
                           dumps(meta or {}))
        if result == "noworld":
            raise NoSuchWorld(f"no sandbox {sandbox!r}")
        if result == "exists":
            raise WorldExists(f"snapshot {sid!r} exists already")
        return self.snapshot_info(sid)

    def snapshots(self) -> builtins.list[SnapshotInfo]:
        ids = self._call(lambda r: r.zrange(self.prefix + "snaps", 0, -1))
        out = []
        for sid in ids:
            try:
                out.append(self.snapshot_info(sid))
            except NoSuchSnapshot:  # deleted meanwhile
                continue
        return out

    def snapshot_info(self, sid: str) -> SnapshotInfo:
        if not isinstance(sid, str) or not sid:
            raise NoSuchSnapshot(f"no snapshot {sid!r}")
        s = self._call(lambda r: r.hgetall(f"{self.prefix}s:{sid}"))
        if not s:
            raise NoSuchSnapshot(f"no snapshot {sid!r}")
        counts = {c: int(n) for c, n in json.loads(s["counts"]).items() if int(n) > 0}
        sizes = json.loads(s["sizes"])
        return SnapshotInfo(sid, s.get("source") or None, int(s["version"]),
                            float(s["created"]), counts,
                            {c: int(sizes.get(c, 0)) for c in counts},
                            json.loads(s.get("meta") or "{}"))

    def export_snapshot(self, sid: str) -> dict[str, Any]:
        info = self.snapshot_info(sid)
        doc = self._view(sid).snapshot()
        doc["sandbox"] = info.source
        doc["tick"] = int(self._call(lambda r: r.hget(f"{self.prefix}s:{sid}", "tick")) or 0)
        return doc

    def import_snapshot(self, data: dict[str, Any], *, id: str | None = None,
                        meta: dict[str, Any] | None = None) -> SnapshotInfo:
        check_snapshot(data, "uploaded snapshot")
        sid = check_snapshot_id(id) if id is not None else "snap_" + secrets.token_hex(8)
        layer = _layer()
        seq = 0
        counts: dict[str, int] = {}
        sizes: dict[str, int] = {}
        collections = [c for c, objs in data["collections"].items() if objs]

        def write(r: redis_py.Redis) -> None:
            nonlocal seq
            p = r.pipeline(transaction=False)
            n = 0
            for name in collections:
                for key, obj in data["collections"][name].items():
                    seq += 1
                    raw = dumps(obj)
                    p.hset(f"{self.prefix}L:{layer}:c:{name}", str(key), f"{seq}:{raw}")
                    p.zadd(f"{self.prefix}L:{layer}:o:{name}", {str(key): seq})
                    counts[name] = counts.get(name, 0) + 1
                    sizes[name] = sizes.get(name, 0) + len(raw)
                    n += 1
                    if n % 1000 == 0:
                        p.execute()
                p.sadd(f"{self.prefix}L:{layer}:cols", name)
            p.set(f"{self.prefix}L:{layer}:n", seq)
            p.execute()

        if collections:
            self._call(write)
        result = self._run(lua.PUBLISH, sid, layer if collections else "", time.time(),
                           dumps(meta or {}), seq, int(data.get("tick") or 0),
                           dumps(data.get("counters") or {}), dumps(counts), dumps(sizes))
        if result == "exists":
            self._drop_layer(layer, collections)
            raise WorldExists(f"snapshot {sid!r} exists already")
        return self.snapshot_info(sid)

    def _drop_layer(self, layer: str, collections: builtins.list[str]) -> None:
        keys = [f"{self.prefix}L:{layer}:{k}" for k in ("cols", "n", "ref")]
        for c in collections:
            keys += [f"{self.prefix}L:{layer}:c:{c}", f"{self.prefix}L:{layer}:o:{c}"]
        self._call(lambda r: r.unlink(*keys))

    def delete_snapshot(self, sid: str) -> bool:
        return bool(int(self._run(lua.DELETE_SNAPSHOT, sid)))

    def _view(self, sid: str) -> World:
        self.snapshot_info(sid)
        return RedisWorld(self, f"snapshot:{sid}", source=f"s:{sid}")

    def _changes_since(self, sandbox: str,
                       since: str | int) -> builtins.list[tuple[str, str, str | None]] | None:
        key = f"{self.prefix}w:{_key(sandbox)}"
        mark, start, log = self._call(lambda r: _pipe(r, [
            ("hget", key + ":mk", since if isinstance(since, str) else ""),
            ("hget", key + ":m", "log_start"), ("lrange", key + ":log", 0, -1)]))
        if isinstance(since, str):
            if mark is None:
                return None
            version = int(mark)
        else:
            version = since
        if version < int(start or 0):
            return None
        out = []
        for entry in log:
            v, c, i, before = json.loads(entry)
            if v > version:
                out.append((c, i, before if isinstance(before, str) else None))
        return out

    # events

    def add_event(self, sandbox: str, event: dict[str, Any]) -> int:
        return self._add_event(sandbox, dumps(event))

    def add_event_line(self, sandbox: str, event: dict[str, Any], line: bytes) -> int:
        if "id" in event:
            return self.add_event(sandbox, event)
        # the audit log's line (UTF-8, a lone surrogate written as its escape): the same
        # JSON object, not serialized again; the script puts the feed id in front
        return self._add_event(sandbox, line.rstrip(b"\n"))

    def _add_event(self, sandbox: str, body: str | bytes) -> int:
        n = int(self._run(lua.ADD_EVENT, _key(sandbox), body, EVENTS_KEEP))
        if n < 0:  # events come before any simulated request: the world starts here
            self._open(sandbox)
            n = int(self._run(lua.ADD_EVENT, _key(sandbox), body, EVENTS_KEEP))
        return n

    def events(self, sandbox: str, after: int = 0,
               limit: int = 100) -> builtins.list[dict[str, Any]]:
        rows = self._run(lua.EVENTS, _key(sandbox), int(after), int(limit))
        return [json.loads(r) for r in rows]

    async def wait_events(self, sandbox: str, after: int,
                          timeout: float) -> builtins.list[dict[str, Any]]:
        found = self.events(sandbox, after)
        if found or timeout <= 0:
            return found
        self._listen()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(sandbox, []).append(waiter)
        try:
            found = self.events(sandbox, after)  # an event may have come before we waited
            if not found:
                await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            waiting = self._waiters.get(sandbox, [])
            if waiter in waiting:
                waiting.remove(waiter)
        return self.events(sandbox, after)

    def watch_events(self, callback: Callable[[str, int], None]) -> None:
        """Call ``callback(sandbox, id)`` in this event loop for every event any replica
        adds to any sandbox's history (what wakes the waiters: Redis pub/sub, so an event
        published while the subscription is down, Redis away, is not announced)."""
        self._watchers.append(callback)
        self._listen()

    def _listen(self) -> None:
        """One subscription per process and event loop: every replica's events wake the
        waiters here."""
        loop = asyncio.get_running_loop()
        if (self._listener is not None and not self._listener.done()
                and self._listener_loop is loop):
            return
        self._listener_loop = loop
        self._listener = loop.create_task(self._listen_forever())

    async def _listen_forever(self) -> None:
        while True:
            client = aredis.Redis.from_url(self.url, decode_responses=True)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.prefix + "events")
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    quoted, _, n = str(message["data"]).rpartition(" ")
                    sandbox = unquote(quoted)
                    for waiter in self._waiters.pop(sandbox, []):
                        if not waiter.done():
                            waiter.set_result(None)
                    for watch in self._watchers:
                        try:
                            watch(sandbox, int(n))
                        except Exception:
                            log.exception("guard: a watcher of world events failed")
            except asyncio.CancelledError:
                raise
            except (redis_py.RedisError, OSError):
                await asyncio.sleep(0.5)  # Redis away: waiters time out; try again
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
                await client.aclose()
