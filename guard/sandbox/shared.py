"""The sandbox registry in Redis (with ``--store redis://...``): every replica and worker
sees the same sandboxes, tokens, policies, address bindings, labels and TTLs, so a sandbox
created through one replica's admin API is served, with its policy and token, by any.

Keys (``P`` is the world store's prefix)::

    P sbx:v    string  registry version (incremented by every change)
    P sbx:r    hash    sandbox id -> its record (JSON, never the token itself)
    P sbx:t    hash    token SHA-256 -> sandbox id
    P sbx:a    hash    client address -> sandbox id
    P sbx:d    set     deleted ids (their derived tokens are refused)
    P sbx:act  hash    sandbox id -> last activity (epoch seconds)

Each change is one Lua script, so two replicas creating one id or binding one address at
once get one success and one conflict. Each process keeps a mirror of the records and
checks the version before every read (one GET); a changed version reloads the mirror, so
a token is refused on every replica as soon as the delete that revoked it has answered.
A proxied request checks it once, at its identity (:meth:`SharedRegistry.view`), and
takes its policy from the same version.
Activity is written at most once a second per sandbox and process (TTLs are minutes).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from guard.errors import SandboxError
from guard.sandbox import tokens
from guard.sandbox.model import DEFAULT_POLICY, Policy, Sandbox, check_id
from guard.sandbox.registry import Registry
from guard.world import bridge

if TYPE_CHECKING:
    from guard.world.redis import RedisStore

TOUCH_EVERY = 1.0  # seconds between two activity writes for one sandbox from one process

_COMMON = r"""
local P = ARGV[1]
local R, T, A, D, ACT, V = P .. 'sbx:r', P .. 'sbx:t', P .. 'sbx:a', P .. 'sbx:d',
  P .. 'sbx:act', P .. 'sbx:v'
"""

# ARGV: prefix, id, record, token hash, address, now
CREATE = _COMMON + r"""
local id, rec, th, addr = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HEXISTS', R, id) == 1 then return {'exists', ''} end
if addr ~= '' then
  local owner = redis.call('HGET', A, addr)
  if owner then return {'bound', owner} end
  redis.call('HSET', A, addr, id)
end
if th ~= '' then redis.call('HSET', T, th, id) end
redis.call('HSET', R, id, rec)
redis.call('SREM', D, id)
redis.call('HSET', ACT, id, ARGV[6])
redis.call('INCR', V)
return {'ok', ''}
"""

# ARGV: prefix, id
DELETE = _COMMON + r"""
local id = ARGV[2]
local rec = redis.call('HGET', R, id)
if not rec then return false end
local r = cjson.decode(rec)
if type(r.token_hash) == 'string' and redis.call('HGET', T, r.token_hash) == id then
  redis.call('HDEL', T, r.token_hash)
end
if type(r.client_address) == 'string' and redis.call('HGET', A, r.client_address) == id then
  redis.call('HDEL', A, r.client_address)
end
redis.call('HDEL', R, id)
redis.call('HDEL', ACT, id)
redis.call('SADD', D, id)
redis.call('INCR', V)
return rec
"""


class SharedRegistry(Registry):
    """A :class:`Registry` whose truth is in Redis; this process keeps a mirror."""

    def __init__(self, store: RedisStore, *, key: bytes | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(key=key, clock=clock)
        self.store = store
        self._k = store.prefix + "sbx:"
        self._version: str | None = "unread"
        self._lock = bridge.Lock()  # the mirror is rebuilt by one request at a time
        self._touched: dict[str, float] = {}

    def view(self) -> Registry:
        """The mirror as synced now, unchanged by later syncs: what one request reads
        for its identity and its policy, with one check of the version between them."""
        self._sync()
        return self._mirror()

    async def view_async(self) -> Registry:
        """:meth:`view` from the event loop: the version is read with the store's
        non-blocking client (no thread hop: the common case, an unchanged registry, costs
        the loop one round trip it does not wait for); a changed one is reloaded in a
        thread."""
        version = await self.store.get_async(self._k + "v")
        if version == self._version:  # (None: no registry yet, as read last time)
            return self._mirror()
        return await asyncio.get_running_loop().run_in_executor(None, self.view)

    def _mirror(self) -> Registry:
        found = Registry(key=self.key, clock=self.clock)
        with self._lock:  # the four tables of one version, not a sync's half-way state
            found._sandboxes, found._by_hash = self._sandboxes, self._by_hash
            found._by_address, found._deleted = self._by_address, self._deleted
        return found

    def _sync(self) -> None:
        """Reload the mirror if any replica changed the registry since this one read it."""
        version = self.store._call(lambda r: r.get(self._k + "v"))
        if version == self._version:
            return
        with self._lock:
            version, records, deleted = self.store._call(lambda r: _atomic(r, [
                ("get", self._k + "v"), ("hgetall", self._k + "r"),
                ("smembers", self._k + "d")]))
            found = sorted((Sandbox.from_record(json.loads(raw)) for raw in records.values()),
                           key=lambda s: (s.created, s.id))
            by_hash = {s.token_hash: s.id for s in found if s.token_hash}
            by_address = {s.client_address: s.id for s in found if s.client_address}
            self._sandboxes = {s.id: s for s in found}
            self._by_hash, self._by_address = by_hash, by_address
            self._deleted = set(deleted)
            self._version = version

    # reading: the base class's, after a sync

    def __contains__(self, sandbox: str) -> bool:
        self._sync()
        return super().__contains__(sandbox)

    def __len__(self) -> int:
        self._sync()
        return super().__len__()

    def get(self, sandbox: str) -> Sandbox | None:
        self._sync()
        return super().get(sandbox)

    def require(self, sandbox: str) -> Sandbox:
        self._sync()
        return super().require(sandbox)

    def list(self, labels: dict[str, str] | None = None) -> builtins.list[Sandbox]:
        self._sync()
        return super().list(labels)

    def policy(self, sandbox: str) -> Policy:
        self._sync()
        return super().policy(sandbox)

    def by_token(self, token: str) -> str | None:
        if not tokens.well_formed(token):
            return None
        self._sync()
        return super().by_token(token)

    def by_address(self, address: str) -> str | None:
        self._sync()
        return super().by_address(address)

    # changes: one script each

    def create(self, sandbox: str, *, policy: Policy = DEFAULT_POLICY,
               labels: dict[str, str] | None = None, ttl_seconds: float | None = None,
               client_address: str | None = None, source: str | None = None,
               parent: str | None = None) -> tuple[Sandbox, str]:
        check_id(sandbox, "sandbox id")
        token = tokens.issue()
        found = Sandbox(sandbox, self.clock(), policy, dict(labels or {}), ttl_seconds,
                        tokens.digest(token), client_address, source, parent)
        status, owner = self.store._run(CREATE, sandbox, json.dumps(found.record()),
                                        found.token_hash or "", client_address or "",
                                        found.created)
        if status == "exists":
            raise SandboxError("conflict", f"sandbox {sandbox!r} exists")
        if status == "bound":
            raise SandboxError("conflict", f"address {client_address} is bound to "
                               f"sandbox {owner!r}")
        self._sync()
        return found, token

    def delete(self, sandbox: str) -> Sandbox:
        check_id(sandbox, "sandbox id")
        raw = self.store._run(DELETE, sandbox)
        if not isinstance(raw, str):
            raise SandboxError("not_found", f"no sandbox {sandbox!r}")
        self._touched.pop(sandbox, None)
        self._sync()
        return Sandbox.from_record(json.loads(raw))

    # activity, shared so that no replica expires a sandbox another one serves

    def touch(self, sandbox: str, now: float | None = None) -> None:
        t = self.clock() if now is None else now
        if now is None and t - self._touched.get(sandbox, float("-inf")) < TOUCH_EVERY:
            return
        self._touched[sandbox] = t
        self.store._call(lambda r: r.hset(self._k + "act", sandbox, repr(t)))

    def last_activity(self, sandbox: str) -> float | None:
        raw = self.store._call(lambda r: r.hget(self._k + "act", sandbox))
        return float(raw) if raw is not None else None

    def expired(self, now: float | None = None) -> builtins.list[str]:
        t = self.clock() if now is None else now
        self._sync()
        activity: dict[str, Any] = self.store._call(lambda r: r.hgetall(self._k + "act"))
        return [s.id for s in self._sandboxes.values() if s.ttl_seconds is not None
                and t - float(activity.get(s.id, s.created)) > s.ttl_seconds]


def _atomic(r: Any, calls: builtins.list[tuple[Any, ...]]) -> builtins.list[Any]:
    p = r.pipeline(transaction=True)
    for name, *args in calls:
        getattr(p, name)(*args)
    result: builtins.list[Any] = p.execute()
    return result
