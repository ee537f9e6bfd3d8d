"""Append audit events to a JSONL file, each carrying the hash of the one before.

Each event is written and flushed when its flow ends. If the log cannot be
written, :class:`AuditWriter` raises :class:`~guard.errors.AuditError` and stays
broken, and the addon refuses all traffic until it can write again: nothing
goes through unrecorded.

With a key, a signed *checkpoint* event is written every ``checkpoint_every``
flows, before each rotation and at shutdown. Its signature covers its ``prev``
hash and so the whole chain before it; a log that does not end with a signed
``shutdown`` checkpoint has lost its end (or guard did not stop cleanly).

With ``max_bytes``, a full file is renamed ``PATH.N`` (N one higher than any
before) and a new ``PATH`` continues the same chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import IO, Any

from guard.audit.event import iso_time
from guard.audit.reader import rotated
from guard.audit.signing import Key
from guard.errors import AuditError

SCHEMA_VERSION = 1
GENESIS = "0" * 64
DEFAULT_CHECKPOINT_EVERY = 100


def canonical(event: dict[str, Any]) -> bytes:
    """Canonical JSON for hashing: sorted keys, no spaces, UTF-8."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: dict[str, Any]) -> str:
    body = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def signed_bytes(checkpoint: dict[str, Any]) -> bytes:
    """What a checkpoint's signature covers: everything but the signature and the hash."""
    return canonical({k: v for k, v in checkpoint.items() if k not in ("hash", "sig")})


class AuditWriter:
    """Writes hash-chained events. ``path=None`` keeps only the chain (no file)."""

    def __init__(self, path: Path | None, *, max_bytes: int | None = None,
                 key: Key | None = None,
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.key = key
        self.checkpoint_every = max(1, checkpoint_every)
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._size = 0
        self._since_checkpoint = 0
        self.seq, self.prev = _tail(path) if path is not None else (0, GENESIS)
        self.broken: str | None = None
        self.closed = False

    def open(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")
            self._size = self._file.tell()
        except OSError as e:
            self.broken = f"cannot open audit log {self.path}: {e.strerror or e}"
            raise AuditError(self.broken) from e

    def write(self, event: dict[str, Any]) -> dict[str, Any]:
        """Number, chain and append ``event``; returns it with ``seq``, ``prev`` and ``hash``."""
        with self._lock:
            full = self._append(event)
            self._since_checkpoint += 1
            if self.key is not None and self._since_checkpoint >= self.checkpoint_every:
                self._checkpoint("interval")
            return full

    def checkpoint(self, reason: str) -> dict[str, Any] | None:
        """Write a signed checkpoint now (no-op without a key)."""
        with self._lock:
            return self._checkpoint(reason) if self.key is not None else None

    def close(self) -> None:
        """Write the shutdown checkpoint (with a key) and close; safe to call twice."""
        with self._lock:
            if self.closed:
                return
            if self.key is not None and not self.broken and self.path is not None:
                try:
                    self._checkpoint("shutdown")
                except AuditError:
                    pass  # already reported; the log then ends unsigned, which verify shows
            self.closed = True
            if self._file is not None:
                self._file.close()
                self._file = None

    # internals (lock held)

    def _append(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.broken:
            raise AuditError(self.broken)
        if self.closed:
            raise AuditError("the audit log is closed (guard is shutting down)")
        full, line = self._numbered(event)
        if self.path is not None:
            if self._file is None:
                self.open()
            if event.get("kind") != "checkpoint" and self.max_bytes and self._size and \
                    self._size + len(line) > self.max_bytes:
                self._rotate()  # may write a checkpoint: number the event again after it
                full, line = self._numbered(event)
            self._put(line)
        self.seq, self.prev = full["seq"], full["hash"]
        return full

    def _numbered(self, event: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        full = {"v": SCHEMA_VERSION, "seq": self.seq + 1, **event, "prev": self.prev}
        full.pop("hash", None)
        # One serialization serves both: the line is the canonical JSON the hash covers,
        # with the hash appended as its last member (readers re-canonicalize to verify).
        body = canonical(full)
        full["hash"] = hashlib.sha256(body).hexdigest()
        return full, body[:-1] + b',"hash":"' + full["hash"].encode() + b'"}\n'

    def _checkpoint(self, reason: str) -> dict[str, Any]:
        assert self.key is not None
        body = {"kind": "checkpoint", "time": iso_time(time.time()), "reason": reason,
                "alg": self.key.alg, "key_id": self.key.key_id}
        full = {"v": SCHEMA_VERSION, "seq": self.seq + 1, **body, "prev": self.prev}
        body["sig"] = self.key.sign(signed_bytes(full))
        written = self._append(body)
        self._since_checkpoint = 0
        if self._file is not None:
            self._sync()
        return written

    def _put(self, line: bytes) -> None:
        assert self._file is not None
        try:
            self._file.write(line)
            self._file.flush()
        except (OSError, ValueError) as e:
            self.broken = f"cannot write audit log {self.path}: {e}"
            raise AuditError(self.broken) from e
        self._size += len(line)

    def _rotate(self) -> None:
        assert self.path is not None and self._file is not None
        if self.key is not None:
            self._checkpoint("rotate")
        older = rotated(self.path)
        number = int(older[-1].name.rsplit(".", 1)[1]) + 1 if older else 1
        try:
            self._sync()
            self._file.close()
            self._file = None
            os.rename(self.path, self.path.with_name(f"{self.path.name}.{number}"))
        except OSError as e:
            self.broken = f"cannot rotate audit log {self.path}: {e.strerror or e}"
            raise AuditError(self.broken) from e
        self.open()

    def _sync(self) -> None:
        assert self._file is not None
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as e:
            if e.errno not in (22,):  # EINVAL: character devices cannot be synced
                self.broken = f"cannot write audit log {self.path}: {e}"
                raise AuditError(self.broken) from e


def _tail(path: Path) -> tuple[int, str]:
    """Continue the chain of an existing log: its last sequence number and hash."""
    for candidate in [path, *reversed(rotated(path))]:
        if candidate.is_file() and candidate.stat().st_size > 0:
            return _last_event(candidate)
    return 0, GENESIS


def _last_event(path: Path) -> tuple[int, str]:
    """The last line's seq and hash, read backwards from the end (lines can be long)."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        tail, pos = b"", end
        while pos > 0 and tail.rstrip(b"\n").count(b"\n") == 0:
            step = min(pos, 65536)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        event = json.loads(last)
        return int(event["seq"]), str(event["hash"])
    except (ValueError, KeyError, TypeError) as e:
        raise AuditError(f"audit log {path} ends with a damaged line; verify it with "
                         f"'guard audit verify' and move it aside: {e}") from e
