"""Read an audit log: the set of files a rotated log spans, and its events in order.

Rotation renames the full file to ``PATH.1``, ``PATH.2``, ... (higher is newer)
and starts a fresh ``PATH``, so the whole log, oldest first, is
``PATH.1 PATH.2 ... PATH``. Naming only ``PATH`` on the command line means that
whole set.

>>> [p.name for p in log_files(Path("/nonexistent/audit.jsonl"))]
['audit.jsonl']
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Line:
    """One line of a log file: the event, or why it could not be read."""

    path: Path
    number: int
    event: dict[str, Any] | None
    problem: str = ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.number}"


def rotated(path: Path) -> list[Path]:
    """``PATH.1``, ``PATH.2``, ... that exist, oldest first."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)$")
    found = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def log_files(path: Path) -> list[Path]:
    """The files of the log whose active file is ``path``, oldest first."""
    return [*rotated(path), path]


def expand(paths: Iterable[Path]) -> list[Path]:
    """Command-line files: one path means its whole rotated set; several are taken as
    given, in the order given."""
    paths = list(paths)
    if len(paths) == 1:
        return [p for p in log_files(paths[0]) if p.exists() or p == paths[0]]
    return paths


def lines(files: Iterable[Path]) -> Iterator[Line]:
    """Every non-empty line of ``files`` in order; raises OSError if a file cannot be read."""
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    event = json.loads(text)
                except ValueError as e:
                    yield Line(path, n, None, f"not JSON: {e}")
                    continue
                if not isinstance(event, dict):
                    yield Line(path, n, None, "not a JSON object")
                    continue
                yield Line(path, n, event)


def events(files: Iterable[Path], *, flows_only: bool = True) -> Iterator[dict[str, Any]]:
    """The readable events of ``files``; checkpoints are skipped unless asked for."""
    for line in lines(files):
        if line.event is None:
            continue
        if flows_only and line.event.get("kind", "flow") != "flow":
            continue
        yield line.event
