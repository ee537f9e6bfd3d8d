"""Follow a live audit log, as ``tail -f`` would, for ``guard audit tail -f``.

A :class:`Follower` reads the complete lines appended to one log file since it last
looked. It survives rotation: when the writer renames ``PATH`` to ``PATH.N`` and starts a
fresh ``PATH``, the follower reads what is left of the old file and goes on from the
start of the new one. A line the writer has only half written is kept until its newline
arrives, so an event is never read torn. :class:`DirectoryFollower` follows every log in
a directory (one per writer with ``guard run --workers``), new ones included.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> f = Follower(d / "audit.jsonl")
>>> f.poll()
[]
>>> _ = (d / "audit.jsonl").write_text('{"seq": 1}\\n{"seq": 2')
>>> [e["seq"] for e in f.poll()]
[1]
>>> with open(d / "audit.jsonl", "a") as out:
...     _ = out.write('}\\n')
>>> [e["seq"] for e in f.poll()]
[2]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

POLL_SECONDS = 0.25


class Follower:
    """New events of the log file ``path`` (which need not exist yet). ``from_end``
    skips what the file holds now."""

    def __init__(self, path: Path, *, from_end: bool = False) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._inode: int | None = None
        self._partial = b""
        self._open(from_end)

    def _open(self, from_end: bool) -> None:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 (kept open between polls)
        except FileNotFoundError:
            return
        if from_end:
            f.seek(0, os.SEEK_END)
        self._file, self._inode = f, os.fstat(f.fileno()).st_ino
        self._partial = b""

    def poll(self) -> list[dict[str, Any]]:
        """The events completed since the last poll, in file order."""
        if self._file is None:
            self._open(False)
            if self._file is None:
                return []
        found = self._read()
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if inode != self._inode:  # rotated: the old file is complete, go on with the new
            found += self._read()
            self.close()
            self._open(False)
            if self._file is not None:
                found += self._read()
        return found

    def _read(self) -> list[dict[str, Any]]:
        assert self._file is not None
        data = self._partial + self._file.read()
        *complete, self._partial = data.split(b"\n")
        out = []
        for raw in complete:
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                continue  # not an event (verify says where); a live view goes on
            if isinstance(event, dict):
                out.append(event)
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class DirectoryFollower:
    """New events of every ``*.jsonl`` log in ``directory``, including logs that appear
    later (a worker that starts). Files there at the start are read ``from_end``."""

    def __init__(self, directory: Path, *, from_end: bool = False) -> None:
        self.directory = directory
        self._followers: dict[Path, Follower] = {}
        self._scan(from_end)

    def _scan(self, from_end: bool) -> None:
        if not self.directory.is_dir():
            return
        for p in sorted(self.directory.glob("*.jsonl")):
            if p not in self._followers:
                self._followers[p] = Follower(p, from_end=from_end)

    def poll(self) -> list[dict[str, Any]]:
        self._scan(False)
        found: list[dict[str, Any]] = []
        for f in self._followers.values():
            found += f.poll()
        found.sort(key=lambda e: str(e.get("time", "")))
        return found

    def close(self) -> None:
        for f in self._followers.values():
            f.close()
