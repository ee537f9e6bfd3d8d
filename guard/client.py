"""A small typed client for guard's admin API, for orchestrators (uses httpx).

>>> admin = Admin("http://127.0.0.1:9090", token="...")          # doctest: +SKIP
>>> base = admin.create(from_="stripe-catalogue", labels={"run": "42"})  # doctest: +SKIP
>>> base.proxy_url("http://127.0.0.1:8080")                      # doctest: +SKIP
'http://sbx_...:gsk_...@127.0.0.1:8080'
>>> kids = [admin.fork(base.id) for _ in range(3)]               # doctest: +SKIP
>>> admin.diff(kids[0].id, since=admin.snapshot(base.id).id)     # doctest: +SKIP

Errors from the API raise :class:`AdminError` (``kind`` and ``status`` as the API
sent them); transport errors are httpx's own.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["Admin", "AdminError", "Sandbox", "Snapshot", "default_token"]


class AdminError(Exception):
    """The admin API answered with an error."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        self.status, self.kind, self.message = status, kind, message
        super().__init__(f"{status} {kind}: {message}")


@dataclass(frozen=True)
class Sandbox:
    id: str
    created: float
    labels: dict[str, str]
    policy: dict[str, Any]
    policy_label: str
    ttl_seconds: float | None
    expires_at: float | None
    client_address: str | None
    source: str | None
    parent: str | None
    world: dict[str, Any]
    token: str | None = None  # only in the answer to create and fork

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Sandbox:
        return cls(data["id"], data["created"], dict(data.get("labels") or {}),
                   dict(data.get("policy") or {}), data.get("policy_label", "default"),
                   data.get("ttl_seconds"), data.get("expires_at"), data.get("client_address"),
                   data.get("source"), data.get("parent"), dict(data.get("world") or {}),
                   data.get("token"))

    @property
    def objects(self) -> int:
        return int(self.world.get("objects", 0))

    def proxy_url(self, proxy: str) -> str:
        """The proxy URL whose credentials prove this sandbox (``--sandbox-from
        proxy-user``): ``http://ID:TOKEN@host:port``."""
        if not self.token:
            raise ValueError("this Sandbox has no token (only create and fork return one)")
        scheme, sep, rest = proxy.partition("://")
        if not sep:
            scheme, rest = "http", proxy
        return f"{scheme}://{quote(self.id, safe='')}:{quote(self.token, safe='')}@{rest}"

    def headers(self) -> dict[str, str]:
        """The header that proves this sandbox (``--sandbox-from header``)."""
        if not self.token:
            raise ValueError("this Sandbox has no token (only create and fork return one)")
        return {"X-Guard-Sandbox": self.token}


@dataclass(frozen=True)
class Snapshot:
    id: str
    source: str | None
    version: int | None
    created: float | None
    objects: int | None
    counts: dict[str, int] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(data["id"], data.get("source"), data.get("version"), data.get("created"),
                   data.get("objects"), dict(data.get("counts") or {}),
                   dict(data.get("labels") or {}))


def default_token(confdir: Path | None = None) -> str | None:
    """``GUARD_ADMIN_TOKEN``, else ``GUARD_ADMIN_TOKEN_FILE``'s first line, else the token a
    loopback guard wrote to ``<confdir>/admin-token`` (default ``~/.guard``)."""
    if os.environ.get("GUARD_ADMIN_TOKEN"):
        return os.environ["GUARD_ADMIN_TOKEN"].strip()
    name = os.environ.get("GUARD_ADMIN_TOKEN_FILE")
    path = Path(name) if name else (confdir or Path("~/.guard").expanduser()) / "admin-token"
    try:
        return path.read_text(encoding="utf-8").splitlines()[0].strip() or None
    except (OSError, IndexError):
        return None


def _path(value: str) -> str:
    return quote(value, safe="")


class Admin:
    """guard's admin API. Use as a context manager, or call :meth:`close`."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        token = token or default_token()
        if not token:
            raise ValueError("no admin token: pass token=, or set GUARD_ADMIN_TOKEN")
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, trust_env=False,
                                  headers={"Authorization": f"Bearer {token}"},
                                  transport=transport)

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # sandboxes

    def create(self, id: str | None = None, *, from_: str | None = None,
               policy: Mapping[str, Any] | None = None, ttl_seconds: float | None = None,
               labels: Mapping[str, str] | None = None,
               client_address: str | None = None) -> Sandbox:
        body = _drop_none({"id": id, "from": from_, "policy": policy,
                           "ttl_seconds": ttl_seconds, "labels": labels,
                           "client_address": client_address})
        return Sandbox.of(self._call("POST", "/v1/sandboxes", body))

    def fork(self, source: str, id: str | None = None, *,
             policy: Mapping[str, Any] | None = None, ttl_seconds: float | None = None,
             labels: Mapping[str, str] | None = None,
             client_address: str | None = None) -> Sandbox:
        body = _drop_none({"id": id, "policy": policy, "ttl_seconds": ttl_seconds,
                           "labels": labels, "client_address": client_address})
        return Sandbox.of(self._call("POST", f"/v1/sandboxes/{_path(source)}/fork", body))

    def list(self, *, labels: Mapping[str, str] | None = None, limit: int = 100
             ) -> Iterator[Sandbox]:
        """Every sandbox (with all ``labels``), page by page."""
        after: str | None = None
        while True:
            params: list[tuple[str, str]] = [("limit", str(limit))]
            params += [("label", f"{k}={v}") for k, v in (labels or {}).items()]
            if after:
                params.append(("after", after))
            page = self._call("GET", "/v1/sandboxes", params=params)
            for item in page["data"]:
                yield Sandbox.of(item)
            after = page.get("next_after")
            if not page.get("has_more") or not after:
                return

    def get(self, sandbox: str) -> Sandbox:
        return Sandbox.of(self._call("GET", f"/v1/sandboxes/{_path(sandbox)}"))

    def delete(self, sandbox: str) -> None:
        self._call("DELETE", f"/v1/sandboxes/{_path(sandbox)}")

    def reset(self, sandbox: str) -> Sandbox:
        return Sandbox.of(self._call("POST", f"/v1/sandboxes/{_path(sandbox)}/reset"))

    # snapshots

    def snapshot(self, sandbox: str, id: str | None = None, *,
                 labels: Mapping[str, str] | None = None) -> Snapshot:
        body = _drop_none({"id": id, "labels": labels})
        return Snapshot.of(self._call("POST", f"/v1/sandboxes/{_path(sandbox)}/snapshots",
                                      body))

    def restore(self, sandbox: str, snapshot: str) -> Sandbox:
        return Sandbox.of(self._call("POST", f"/v1/sandboxes/{_path(sandbox)}/restore",
                                     {"snapshot": snapshot}))

    def snapshots(self) -> builtins.list[Snapshot]:
        return [Snapshot.of(s) for s in self._call("GET", "/v1/snapshots")["data"]]

    def download(self, snapshot: str) -> dict[str, Any]:
        """The snapshot document (the ``guard state export`` format)."""
        data: dict[str, Any] = self._call("GET", f"/v1/snapshots/{_path(snapshot)}")
        return data

    def upload(self, snapshot: str, document: Mapping[str, Any]) -> Snapshot:
        return Snapshot.of(self._call("PUT", f"/v1/snapshots/{_path(snapshot)}",
                                      dict(document)))

    def delete_snapshot(self, snapshot: str) -> None:
        self._call("DELETE", f"/v1/snapshots/{_path(snapshot)}")

    # observation

    def diff(self, sandbox: str, since: str | int) -> dict[str, Any]:
        """What changed since a snapshot id or a world version: per collection
        ``created``, ``changed`` (field by field) and ``deleted``, and the ``outbox``."""
        data: dict[str, Any] = self._call("GET", f"/v1/sandboxes/{_path(sandbox)}/diff",
                                          params={"since": str(since)})
        return data

    def events(self, sandbox: str, after: int = 0,
               limit: int = 100) -> builtins.list[dict[str, Any]]:
        page = self._call("GET", f"/v1/sandboxes/{_path(sandbox)}/events",
                          params={"after": str(after), "limit": str(limit)})
        events: builtins.list[dict[str, Any]] = page["data"]
        return events

    def stream(self, sandbox: str, after: int = 0) -> Iterator[dict[str, Any]]:
        """Events as they happen (server-sent events); ends when the sandbox is deleted."""
        with self._http.stream("GET", f"/v1/sandboxes/{_path(sandbox)}/events/stream",
                               params={"after": str(after)}, timeout=None) as r:
            if r.status_code >= 400:
                r.read()
                self._raise(r)
            kind, data = "", ""
            for line in r.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and data:
                    if kind == "end":
                        return
                    yield json.loads(data)
                    kind, data = "", ""

    # transport

    def _call(self, method: str, path: str, body: Any = None,
              params: Any = None) -> Any:
        r = self._http.request(method, path, json=body, params=params)
        if r.status_code >= 400:
            self._raise(r)
        return r.json()

    @staticmethod
    def _raise(r: httpx.Response) -> None:
        try:
            err = r.json()["error"]
            raise AdminError(r.status_code, str(err["type"]), str(err["message"]))
        except (ValueError, KeyError, TypeError):
            raise AdminError(r.status_code, "http_error", r.text[:500]) from None


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}
