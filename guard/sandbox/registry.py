"""The sandbox registry: which sandboxes exist, their token hashes, policies, address
bindings, labels and TTLs. Used from guard's event loop only (the proxy and the admin
API share that loop), so it needs no locks.

With ``path`` (``--state DIR`` gives ``DIR/sandboxes.json``) every change is written
atomically, so tokens and policies survive a restart; tokens themselves are never
stored, only their SHA-256.

>>> reg = Registry()
>>> sandbox, token = reg.create("agent-1", labels={"run": "a"})
>>> reg.by_token(token), reg.by_token(token[:-1])
('agent-1', None)
>>> _ = reg.delete("agent-1"); reg.by_token(token) is None
True
"""

from __future__ import annotations

import builtins
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from guard.errors import SandboxError
from guard.sandbox import tokens
from guard.sandbox.model import DEFAULT_POLICY, Policy, Sandbox, check_id

RECORD_VERSION = 1


class Registry:
    def __init__(self, *, key: bytes | None = None, path: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.path = path
        self.clock = clock
        self._sandboxes: dict[str, Sandbox] = {}
        self._by_hash: dict[str, str] = {}
        self._by_address: dict[str, str] = {}
        self._deleted: set[str] = set()  # derived tokens of these ids are refused
        self._activity: dict[str, float] = {}
        if path is not None and path.exists():
            self._load(path)

    # reading

    def __contains__(self, sandbox: str) -> bool:
        return sandbox in self._sandboxes

    def __len__(self) -> int:
        return len(self._sandboxes)

    def get(self, sandbox: str) -> Sandbox | None:
        return self._sandboxes.get(sandbox)

    def require(self, sandbox: str) -> Sandbox:
        found = self._sandboxes.get(check_id(sandbox, "sandbox id"))
        if found is None:
            raise SandboxError("not_found", f"no sandbox {sandbox!r}")
        return found

    def list(self, labels: dict[str, str] | None = None) -> list[Sandbox]:
        """Registered sandboxes, oldest first, with every given label."""
        wanted = labels or {}
        return [s for s in self._sandboxes.values()
                if all(s.labels.get(k) == v for k, v in wanted.items())]

    def policy(self, sandbox: str) -> Policy:
        found = self._sandboxes.get(sandbox)
        return found.policy if found is not None else DEFAULT_POLICY

    # identity

    def view(self) -> Registry:
        """The registry as one request reads it: identity and policy of a request come
        from one version of it (a shared registry checks that version once; see
        :mod:`guard.sandbox.shared`). Here, the registry itself."""
        return self

    async def view_async(self) -> Registry:
        """:meth:`view` from the event loop, without blocking it (a shared registry asks
        Redis with a non-blocking client)."""
        return self.view()

    def by_token(self, token: str) -> str | None:
        """The sandbox a token proves: an issued token of a registered sandbox, or a token
        derived from the guard key for an id that was not deleted."""
        if not tokens.well_formed(token):
            return None
        issued = self._by_hash.get(tokens.digest(token))
        if issued is not None:
            return issued
        derived = tokens.derived_id(token, self.key)
        if derived is None or derived in self._deleted:
            return None
        return derived

    def by_address(self, address: str) -> str | None:
        return self._by_address.get(address)

    # changes

    def create(self, sandbox: str, *, policy: Policy = DEFAULT_POLICY,
               labels: dict[str, str] | None = None, ttl_seconds: float | None = None,
               client_address: str | None = None, source: str | None = None,
               parent: str | None = None) -> tuple[Sandbox, str]:
        """Register a sandbox; returns it and its token (the only time the token is seen)."""
        check_id(sandbox, "sandbox id")
        if sandbox in self._sandboxes:
            raise SandboxError("conflict", f"sandbox {sandbox!r} exists")
        if client_address is not None:
            owner = self._by_address.get(client_address)
            if owner is not None:
                raise SandboxError("conflict", f"address {client_address} is bound to "
                                   f"sandbox {owner!r}")
        token = tokens.issue()
        found = Sandbox(sandbox, self.clock(), policy, dict(labels or {}), ttl_seconds,
                        tokens.digest(token), client_address, source, parent)
        self._add(found)
        self._deleted.discard(sandbox)
        self._activity[sandbox] = found.created
        self._save()
        return found, token

    def delete(self, sandbox: str) -> Sandbox:
        found = self.require(sandbox)
        del self._sandboxes[sandbox]
        if found.token_hash:
            self._by_hash.pop(found.token_hash, None)
        if found.client_address:
            self._by_address.pop(found.client_address, None)
        self._activity.pop(sandbox, None)
        self._deleted.add(sandbox)
        self._save()
        return found

    def touch(self, sandbox: str, now: float | None = None) -> None:
        if sandbox in self._sandboxes:
            self._activity[sandbox] = self.clock() if now is None else now

    def last_activity(self, sandbox: str) -> float | None:
        return self._activity.get(sandbox)

    def expired(self, now: float | None = None) -> builtins.list[str]:
        """Registered sandboxes idle for longer than their TTL."""
        t = self.clock() if now is None else now
        return [s.id for s in self._sandboxes.values() if s.ttl_seconds is not None
                and t - self._activity.get(s.id, s.created) > s.ttl_seconds]

    # persistence

    def _add(self, found: Sandbox) -> None:
        self._sandboxes[found.id] = found
        if found.token_hash:
            self._by_hash[found.token_hash] = found.id
        if found.client_address:
            self._by_address[found.client_address] = found.id

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"v": RECORD_VERSION, "sandboxes": [s.record() for s in self._sandboxes.values()],
                "deleted": sorted(self._deleted)}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as e:
            raise SandboxError("conflict", f"cannot save the sandbox registry {self.path}: "
                               f"{e.strerror or e}") from e

    def _load(self, path: Path) -> None:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if data.get("v") != RECORD_VERSION:
                raise ValueError(f"unsupported version {data.get('v')!r}")
            records: Iterable[dict[str, Any]] = data.get("sandboxes") or []
            for record in records:
                self._add(Sandbox.from_record(record))
            self._deleted = set(data.get("deleted") or [])
        except (OSError, ValueError, KeyError, TypeError, SandboxError) as e:
            raise SandboxError("invalid_request",
                               f"{path}: cannot read the sandbox registry: {e}") from e
        now = self.clock()
        self._activity = {s: now for s in self._sandboxes}
