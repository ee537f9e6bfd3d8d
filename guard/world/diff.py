"""A structured diff of a world since a snapshot or a version: what an evaluator reads to
judge what an agent did.

Per collection: objects ``created``, ``deleted`` (as they were) and ``changed`` (before and
after per field, dotted paths into nested objects; lists compare whole). The outbox is
listed apart (``outbox``: the records written since). Since a snapshot the world descends
from, or a version it still remembers, the diff costs O(changes); otherwise it compares
the two worlds whole.

>>> fields({"a": 1, "m": {"x": 1, "y": 2}}, {"a": 1, "m": {"x": 1, "y": 3}, "b": [1]})
{'m.y': {'before': 2, 'after': 3}, 'b': {'before': None, 'after': [1]}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from guard.errors import WorldError

if TYPE_CHECKING:
    from guard.world.store import World, WorldStore

OUTBOX = "outbox"
_MISSING = object()


def fields(before: dict[str, Any], after: dict[str, Any],
           prefix: str = "") -> dict[str, dict[str, Any]]:
    """The fields that differ, as ``{path: {"before": b, "after": a}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key in [*before, *(k for k in after if k not in before)]:
        b, a = before.get(key, _MISSING), after.get(key, _MISSING)
        if b == a and type(b) is type(a):
            continue
        path = f"{prefix}{key}"
        if isinstance(b, dict) and isinstance(a, dict):
            out.update(fields(b, a, path + "."))
        else:
            out[path] = {"before": None if b is _MISSING else b,
                         "after": None if a is _MISSING else a}
    return out


def parse_since(since: str | int) -> tuple[str | None, int | None]:
    """(snapshot id, None) or (None, version)."""
    if isinstance(since, int) and not isinstance(since, bool):
        return None, since
    if isinstance(since, str) and (since.isascii() and since.isdigit()):
        return None, int(since)
    if isinstance(since, str) and since:
        return since, None
    raise WorldError(f"diff since {since!r}: give a snapshot id or a world version")


def diff(store: WorldStore, sandbox: str, since: str | int) -> dict[str, Any]:
    info = store.info(sandbox)  # NoSuchWorld
    sid, version = parse_since(since)
    if sid is not None:
        store.snapshot_info(sid)  # NoSuchSnapshot
    world = store.world(sandbox)
    changes = store._changes_since(sandbox, sid if sid is not None else version or 0)
    out: dict[str, Any] = {
        "sandbox": sandbox,
        "since": {"snapshot": sid} if sid is not None else {"version": version},
        "version": info.version,
        "collections": {},
        "outbox": [],
    }
    if changes is not None:
        firsts: dict[tuple[str, str], str | None] = {}
        for collection, id, before in changes:
            firsts.setdefault((collection, id), before)
        pairs: Iterable[tuple[str, str, str | None, str | None]] = (
            (c, i, b, world._read(c, i)) for (c, i), b in firsts.items())
    elif sid is not None:
        pairs = _whole(store._view(sid), world)
    else:
        raise WorldError(f"sandbox {sandbox!r} no longer remembers its changes since version "
                         f"{version}: diff against a snapshot instead")
    for collection, id, before, after in pairs:
        _add(out, collection, id, before, after)
    return out


def _whole(base: World, world: World) -> Iterable[tuple[str, str, str | None, str | None]]:
    for collection in sorted(set(base.collections()) | set(world.collections())):
        old = dict(base._scan_raw(collection, after=None, reverse=False))
        for id, raw in world._scan_raw(collection, after=None, reverse=False):
            before = old.pop(id, None)
            if before != raw:
                yield collection, id, before, raw
        for id, raw in old.items():
            yield collection, id, raw, None


def _add(out: dict[str, Any], collection: str, id: str, before: str | None,
         after: str | None) -> None:
    if before == after:
        return
    b = json.loads(before) if before is not None else None
    a = json.loads(after) if after is not None else None
    if collection == OUTBOX:
        if b is None and a is not None:
            out["outbox"].append(a)
        return
    entry = out["collections"].setdefault(collection,
                                          {"created": [], "changed": [], "deleted": []})
    if b is None:
        entry["created"].append(a)
    elif a is None:
        entry["deleted"].append(b)
    else:
        changed = fields(b, a)
        if changed:
            entry["changed"].append({"id": id, "fields": changed})
