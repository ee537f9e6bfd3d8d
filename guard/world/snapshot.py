"""Snapshot files: a sandbox's world as JSON, to fork a prepared world into many sandboxes
(``guard run --world FILE``) or move one between runs (``guard state export|import``).

A snapshot is ``{"v": 1, "sandbox": NAME, "collections": {name: {id: object}},
"counters": {name: n}}``. ``--world`` also takes the name of a seed file shipped in
``fixtures/seeds/`` (``--world stripe-catalogue``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from guard.errors import WorldError
from guard.resources import fixtures_dir

SNAPSHOT_VERSION = 1


def seeds_dir() -> Path:
    return fixtures_dir() / "seeds"


def resolve(name: str | Path) -> Path:
    """A snapshot path as given, or a seed file by name (with or without ``.json``)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    for candidate in (seeds_dir() / str(name), seeds_dir() / f"{name}.json"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in seeds_dir().glob("*.json"))) or "none"
    raise WorldError(f"world snapshot {str(name)!r} not found (seed files: {known})")


def read(name: str | Path) -> dict[str, Any]:
    path = resolve(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WorldError(f"{path}: cannot read world snapshot: {e}") from e
    if not isinstance(data, dict) or data.get("v") != SNAPSHOT_VERSION:
        raise WorldError(f"{path}: not a version {SNAPSHOT_VERSION} world snapshot")
    if not isinstance(data.get("collections"), dict):
        raise WorldError(f"{path}: a world snapshot needs a 'collections' object")
    return data


def write(snapshot: dict[str, Any], path: Path) -> None:
    """Write atomically, so a reader never sees half a snapshot."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False)
                       + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise WorldError(f"cannot write world snapshot {path}: {e}") from e
