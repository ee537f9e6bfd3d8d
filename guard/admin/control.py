"""The control plane: sandboxes, their tokens, policies and worlds, as operations.

The admin API (:mod:`guard.admin.app`) is a thin HTTP layer over this class; it
holds no HTTP and no mitmproxy, so tests and embedders call it directly. The
registry (:mod:`guard.sandbox.registry`) decides identity and policy; the world
store decides objects, forks, snapshots, diffs, events and TTLs. A sandbox is
registered and its world created together, and both go together.

Everything here runs on guard's event loop (the admin server runs inside it), so a
request the proxy is deciding never sees a half-made sandbox.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from guard.errors import NoSuchSnapshot, NoSuchWorld, SandboxError, WorldError, WorldExists
from guard.packs import Packs
from guard.sandbox.model import DEFAULT_POLICY, Policy, Sandbox, check_id, valid_id
from guard.sandbox.policies import PolicyEngines
from guard.sandbox.registry import Registry
from guard.world import WorldStore, bridge
from guard.world import snapshot as seed_files

T = TypeVar("T")
ORIGIN = "origin:"  # the snapshot a sandbox made from something started as (for reset)
MAX_LABELS = 64
MAX_TTL = 10 * 365 * 86400.0
PAGE_LIMIT = 100
MAX_PAGE = 1000


def _labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for k, v in value.items():
        if not (0 < len(k) <= 63 and len(v) <= 256) or not k.replace("-", "").replace(
                "_", "").replace(".", "").replace("/", "").isalnum():
            raise ValueError(f"bad label {k[:40]!r}: keys are 1-63 of A-Z a-z 0-9 . _ - /, "
                             "values at most 256 characters")
    return value


def _address(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"not an IP address: {value[:60]!r}") from None


class CreateSandbox(BaseModel):
    """``POST /v1/sandboxes``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str | None = Field(default=None, description="default: sbx_ + 16 hex digits")
    from_: str | None = Field(default=None, alias="from",
                              description="a snapshot id, a seed name (fixtures/seeds, e.g. "
                              "stripe-catalogue) or a sandbox id to copy")
    policy: Policy | None = None
    ttl_seconds: float | None = Field(default=None, gt=0, le=MAX_TTL,
                                      description="delete the sandbox after this long idle")
    labels: dict[str, str] = Field(default_factory=dict)
    client_address: str | None = Field(default=None,
                                       description="requests from this address are this "
                                       "sandbox, without a token")

    _check_labels = field_validator("labels")(classmethod(lambda cls, v: _labels(v)))
    _check_address = field_validator("client_address")(classmethod(lambda cls, v: _address(v)))


class ForkSandbox(BaseModel):
    """``POST /v1/sandboxes/{id}/fork``: policy, TTL and labels default to the source's."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    policy: Policy | None = None
    ttl_seconds: float | None = Field(default=None, gt=0, le=MAX_TTL)
    labels: dict[str, str] | None = None
    client_address: str | None = None

    _check_labels = field_validator("labels")(
        classmethod(lambda cls, v: None if v is None else _labels(v)))
    _check_address = field_validator("client_address")(classmethod(lambda cls, v: _address(v)))


class TakeSnapshot(BaseModel):
    """``POST /v1/sandboxes/{id}/snapshots``."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="default: snap_ + 16 hex digits")
    labels: dict[str, str] = Field(default_factory=dict)

    _check_labels = field_validator("labels")(classmethod(lambda cls, v: _labels(v)))


class RestoreSnapshot(BaseModel):
    """``POST /v1/sandboxes/{id}/restore``."""

    model_config = ConfigDict(extra="forbid")

    snapshot: str


def snapshot_id(value: object) -> str:
    """User snapshot ids follow the sandbox id rule; ``seed:NAME`` names a shared seed."""
    if isinstance(value, str) and value.startswith("seed:"):
        check_id(value[5:], "seed name")
        return value
    return check_id(value, "snapshot id")


class ControlPlane:
    def __init__(self, registry: Registry, store: WorldStore, policies: PolicyEngines,
                 packs: Callable[[], Packs], clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.store = store
        self.policies = policies
        self.packs = packs  # the running packs (hot reload swaps them)
        self.clock = clock

    async def run(self, op: Callable[[], T]) -> T:
        """``op()`` for the admin API: in a thread when the store waits on the network
        (Redis), so the event loop the proxy shares keeps serving meanwhile; else here, as
        a greenlet (a world a request holds while it takes turns is waited for on the loop,
        guard.world.bridge)."""
        if self.store.blocking:
            return await asyncio.to_thread(op)
        return await bridge.run(op)

    # sandboxes

    def create(self, body: CreateSandbox) -> dict[str, Any]:
        sandbox = check_id(body.id, "sandbox id") if body.id else _new_id("sbx_")
        policy = body.policy or DEFAULT_POLICY
        self.policies.check(self.packs(), policy)
        self._free(sandbox)
        source, kind = None, None
        if body.from_ is not None:
            source, kind = self._source(body.from_)
        if kind == "sandbox":
            assert source is not None
            info = self._world_op(lambda: self.store.fork(source, sandbox))
        else:
            info = self._world_op(lambda: self.store.create(sandbox, snapshot=source))
        try:
            found, token = self.registry.create(
                sandbox, policy=policy, labels=body.labels, ttl_seconds=body.ttl_seconds,
                client_address=body.client_address, source=body.from_,
                parent=source if kind == "sandbox" else None)
        except SandboxError:
            self.store.delete(sandbox)
            raise
        if source is not None:
            self._origin(sandbox)
        return {**self._view(found, info.as_dict()), "token": token}

    def fork(self, source: str, body: ForkSandbox) -> dict[str, Any]:
        parent = self.registry.require(source)
        sandbox = check_id(body.id, "sandbox id") if body.id else _new_id("sbx_")
        policy = body.policy if body.policy is not None else parent.policy
        self.policies.check(self.packs(), policy)
        self._free(sandbox)
        ttl = body.ttl_seconds if body.ttl_seconds is not None else parent.ttl_seconds
        info = self._world_op(lambda: self.store.fork(source, sandbox))
        try:
            found, token = self.registry.create(
                sandbox, policy=policy,
                labels=body.labels if body.labels is not None else dict(parent.labels),
                ttl_seconds=ttl, client_address=body.client_address, source=source,
                parent=source)
        except SandboxError:
            self.store.delete(sandbox)
            raise
        self._origin(sandbox)
        return {**self._view(found, info.as_dict()), "token": token}

    def list(self, *, labels: dict[str, str] | None = None, after: str | None = None,
             limit: int = PAGE_LIMIT) -> dict[str, Any]:
        limit = max(1, min(limit, MAX_PAGE))
        found = self.registry.list(labels)
        if after is not None:
            ids = [s.id for s in found]
            found = found[ids.index(after) + 1:] if after in ids else []
        page = found[:limit]
        return {"object": "list", "data": [self._view(s, self._info(s.id)) for s in page],
                "has_more": len(found) > limit,
                "next_after": page[-1].id if len(found) > limit else None}

    def show(self, sandbox: str) -> dict[str, Any]:
        found = self.registry.require(sandbox)
        return self._view(found, self._info(sandbox))

    def delete(self, sandbox: str) -> dict[str, Any]:
        found = self.registry.require(sandbox)
        self.registry.delete(sandbox)  # its token stops working first
        self._drop_world(sandbox)
        return {"id": found.id, "object": "sandbox", "deleted": True}

    def reset(self, sandbox: str) -> dict[str, Any]:
        """Back to what the sandbox started as: its origin snapshot (taken when it was made
        from a snapshot, seed or sandbox, or forked), else empty."""
        found = self.registry.require(sandbox)
        origin = ORIGIN + sandbox
        if found.source is not None and self._snapshot_exists(origin):
            info = self._world_op(lambda: self.store.restore(sandbox, origin))
        else:
            info = self._world_op(lambda: self.store.reset(sandbox))
        return self._view(found, info.as_dict())

    def _origin(self, sandbox: str) -> None:
        """Remember what a new sandbox started as (copy-on-write: O(1)), for reset."""
        self._world_op(lambda: self.store.snapshot(sandbox, id=ORIGIN + sandbox,
                                                   meta={"origin": sandbox}))

    # snapshots

    def snapshot(self, sandbox: str, body: TakeSnapshot) -> dict[str, Any]:
        self.registry.require(sandbox)
        sid = snapshot_id(body.id) if body.id else _new_id("snap_")
        if self._snapshot_exists(sid):
            raise SandboxError("conflict", f"snapshot {sid!r} exists")
        info = self._world_op(lambda: self.store.snapshot(sandbox, id=sid,
                                                          meta={"labels": body.labels}))
        return _snapshot_view(info.as_dict())

    def snapshots(self) -> dict[str, Any]:
        return {"object": "list",
                "data": [_snapshot_view(s.as_dict()) for s in self.store.snapshots()
                         if not s.id.startswith(ORIGIN)],
                "has_more": False}

    def snapshot_info(self, sid: str) -> dict[str, Any]:
        sid = snapshot_id(sid)
        return _snapshot_view(self._world_op(lambda: self.store.snapshot_info(sid)).as_dict())

    def export_snapshot(self, sid: str) -> dict[str, Any]:
        sid = snapshot_id(sid)
        doc: dict[str, Any] = self._world_op(lambda: self.store.export_snapshot(sid))
        return doc

    def import_snapshot(self, sid: str, data: object) -> dict[str, Any]:
        sid = snapshot_id(sid)
        if sid.startswith("seed:"):
            raise SandboxError("invalid_request", "seed: snapshot ids are guard's own")
        if not isinstance(data, dict):
            raise SandboxError("invalid_request", "a snapshot is a JSON object")
        if self._snapshot_exists(sid):
            raise SandboxError("conflict", f"snapshot {sid!r} exists (snapshots are "
                               "immutable: upload under a new id)")
        info = self._world_op(lambda: self.store.import_snapshot(data, id=sid))
        return _snapshot_view(info.as_dict())

    def delete_snapshot(self, sid: str) -> dict[str, Any]:
        sid = snapshot_id(sid)
        if not self._world_op(lambda: self.store.delete_snapshot(sid)):
            raise SandboxError("not_found", f"no snapshot {sid!r}")
        return {"id": sid, "object": "snapshot", "deleted": True}

    def restore(self, sandbox: str, body: RestoreSnapshot) -> dict[str, Any]:
        found = self.registry.require(sandbox)
        sid = snapshot_id(body.snapshot)
        if sid.startswith("seed:"):
            self._world_op(lambda: self.store.seed_snapshot(sid[5:]))
        info = self._world_op(lambda: self.store.restore(sandbox, sid))
        return self._view(found, info.as_dict())

    # observation

    def diff(self, sandbox: str, since: str) -> dict[str, Any]:
        self.registry.require(sandbox)
        if not since:
            raise SandboxError("invalid_request", "diff needs ?since=SNAPSHOT_ID or a version")
        point: str | int = (int(since) if (since.isascii() and since.isdigit()) and len(since) <= 18
                            else snapshot_id(since))
        found: dict[str, Any] = self._world_op(lambda: self.store.diff(sandbox, point))
        return found

    def events(self, sandbox: str, after: int = 0, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        self.registry.require(sandbox)
        limit = max(1, min(limit, MAX_PAGE))
        found = self._world_op(lambda: self.store.events(sandbox, after, limit))
        return {"object": "list", "sandbox": sandbox, "data": found,
                "last_id": found[-1]["id"] if found else after}

    async def wait_events(self, sandbox: str, after: int, timeout: float
                          ) -> builtins.list[dict[str, Any]]:
        self.registry.require(sandbox)
        return await self.store.wait_events(sandbox, after, timeout)

    def expire(self) -> builtins.list[str]:
        """Delete sandboxes idle past their TTL: token first, then the world.

        Idle means no proxied request proven to be the sandbox's (the registry is touched
        by every one, blocked and guard.internal requests included) and no admin change,
        so the TTL is decided here, not by the world store's own activity clock."""
        gone = []
        for sandbox in self.registry.expired():
            try:
                self.registry.delete(sandbox)
            except SandboxError:  # another replica expired it first
                continue
            self._drop_world(sandbox)
            gone.append(sandbox)
        return gone

    def _drop_world(self, sandbox: str) -> None:
        self._world_op(lambda: self.store.delete(sandbox))
        self._world_op(lambda: self.store.delete_snapshot(ORIGIN + sandbox))

    # helpers

    def _free(self, sandbox: str) -> None:
        if sandbox in self.registry or self.store.exists(sandbox):
            raise SandboxError("conflict", f"sandbox {sandbox!r} exists")

    def _source(self, name: str) -> tuple[str, str]:
        """(snapshot or sandbox id, kind) for a ``from`` value."""
        if name.startswith("seed:"):
            name = name[5:]
        elif self._snapshot_exists(name):
            return name, "snapshot"
        elif name in self.registry or self.store.exists(name):
            check_id(name)
            return name, "sandbox"
        # Only seed names from fixtures/seeds, never a path on guard's host.
        if not (valid_id(name) and (seed_files.seeds_dir() / f"{name}.json").is_file()):
            raise SandboxError("not_found", f"no snapshot, sandbox or seed {name[:80]!r}")
        return self._world_op(lambda: self.store.seed_snapshot(name)).id, "seed"

    def _snapshot_exists(self, sid: str) -> bool:
        try:
            self.store.snapshot_info(sid)
        except (NoSuchSnapshot, WorldError):
            return False
        return True

    def _info(self, sandbox: str) -> dict[str, Any]:
        try:
            return self.store.info(sandbox).as_dict()
        except NoSuchWorld:
            return {}

    def _world_op(self, op: Callable[[], Any]) -> Any:
        try:
            return op()
        except NoSuchWorld as e:
            raise SandboxError("not_found", str(e)) from e
        except NoSuchSnapshot as e:
            raise SandboxError("not_found", str(e)) from e
        except WorldExists as e:
            raise SandboxError("conflict", str(e)) from e
        except SandboxError:
            raise
        except WorldError as e:
            if type(e).__name__ == "StoreUnavailable":
                raise
            raise SandboxError("invalid_request", str(e)) from e

    def _view(self, found: Sandbox, info: dict[str, Any]) -> dict[str, Any]:
        last = self.registry.last_activity(found.id)
        world = {k: info[k] for k in ("version", "objects", "counts", "bytes", "events",
                                      "last_activity") if k in info}
        if last is not None:
            world["last_activity"] = max(last, world.get("last_activity") or 0)
        expires = (world.get("last_activity", found.created) + found.ttl_seconds
                   if found.ttl_seconds is not None else None)
        return {"id": found.id, "object": "sandbox", "created": found.created,
                "labels": found.labels,
                "policy": found.policy.model_dump(mode="json", exclude_defaults=True),
                "policy_label": found.policy.label(), "ttl_seconds": found.ttl_seconds,
                "expires_at": expires, "client_address": found.client_address,
                "source": found.source, "parent": found.parent, "world": world}


def _snapshot_view(info: dict[str, Any]) -> dict[str, Any]:
    meta = info.get("meta") or {}
    return {"id": info["id"], "object": "snapshot", "source": info.get("source"),
            "version": info.get("version"), "created": info.get("created"),
            "objects": info.get("objects"), "counts": info.get("counts"),
            "bytes": info.get("bytes"), "labels": meta.get("labels") or {},
            **({"seed": meta["seed"]} if "seed" in meta else {})}


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)
