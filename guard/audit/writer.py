"""Append audit events to a JSONL file, each carrying the hash of the one before.

Each event is written and flushed when its flow ends. If the log cannot be
written, :class:`AuditWriter` raises :class:`~guard.errors.AuditError` and stays
broken, and the addon refuses all traffic until it can write again: nothing
goes through unrecorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import IO, Any

from guard.errors import AuditError

SCHEMA_VERSION = 1
GENESIS = "0" * 64


def canonical(event: dict[str, Any]) -> bytes:
    """Canonical JSON for hashing: sorted keys, no spaces, UTF-8."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: dict[str, Any]) -> str:
    body = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


class AuditWriter:
    """Writes hash-chained events. ``path=None`` keeps only the chain (no file)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self.seq, self.prev = _tail(path) if path is not None else (0, GENESIS)
        self.broken: str | None = None

    def open(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            self.broken = f"cannot open audit log {self.path}: {e.strerror or e}"
            raise AuditError(self.broken) from e

    def write(self, event: dict[str, Any]) -> dict[str, Any]:
        """Number, chain and append ``event``; returns it with ``seq``, ``prev`` and ``hash``."""
        with self._lock:
            if self.broken:
                raise AuditError(self.broken)
            full = {"v": SCHEMA_VERSION, "seq": self.seq + 1, **event, "prev": self.prev}
            full["hash"] = event_hash(full)
            if self.path is not None:
                if self._file is None:
                    self.open()
                assert self._file is not None
                try:
                    self._file.write(json.dumps(full, ensure_ascii=False,
                                                separators=(",", ":")) + "\n")
                    self._file.flush()
                except (OSError, ValueError) as e:
                    self.broken = f"cannot write audit log {self.path}: {e}"
                    raise AuditError(self.broken) from e
            self.seq, self.prev = full["seq"], full["hash"]
            return full

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _tail(path: Path) -> tuple[int, str]:
    """Continue the chain of an existing log: its last sequence number and hash."""
    if not path.exists() or path.stat().st_size == 0:
        return 0, GENESIS
    last = b""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 1_048_576))
        for line in f:
            if line.strip():
                last = line
    try:
        event = json.loads(last)
        return int(event["seq"]), str(event["hash"])
    except (ValueError, KeyError, TypeError) as e:
        raise AuditError(f"audit log {path} ends with a damaged line; verify it with "
                         f"'guard audit verify' and move it aside: {e}") from e
