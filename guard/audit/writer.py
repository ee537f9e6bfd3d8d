"""Append audit events to a JSONL file, each carrying the hash of the one before.

Each event is written with one unbuffered ``write`` as soon as it is built. If
the log cannot be written, :class:`AuditWriter` raises
:class:`~guard.errors.AuditError` and the addon refuses all traffic: nothing goes
through unrecorded. It heals by itself: while broken, a write is retried at most
every :data:`RETRY_SECONDS`; the first that succeeds cuts off the line the failure
left half-written, records ``guard.audit-recovered`` (how long, why, how many
events were refused) and carries on with the same chain.

A log whose last line is torn (guard was killed mid-write, or the disk filled
and guard stopped) starts anyway: the torn bytes are moved to ``PATH.torn-TIME``
and the new chain records ``guard.audit-torn-tail`` with their size and SHA-256.
A damaged line anywhere else still stops start-up: that is not a torn write.

With a key, a signed *checkpoint* event is written every ``checkpoint_every``
flows, before each rotation, at the start of each new file and at shutdown. Its
signature covers its ``prev`` hash and so the whole chain before it; a log that
does not end with a signed ``shutdown`` checkpoint has lost its end (or guard did
not stop cleanly).

With ``max_bytes``, a full file is renamed ``PATH.N`` (N one higher than any
before) and a new ``PATH`` continues the same chain. With ``budget``, the oldest
rotated files are deleted while all files together exceed it, and
``guard.audit-retention`` records which (first and last seq, last hash), so
``guard audit verify`` still proves the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from guard.audit.event import iso_time, system_event
from guard.audit.reader import rotated
from guard.audit.signing import Key
from guard.errors import AuditError

SCHEMA_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)  # v1: every flow one event; v2 adds request events
GENESIS = "0" * 64
DEFAULT_CHECKPOINT_EVERY = 100
RETRY_SECONDS = 1.0
HEAL_MIN_FREE = 64 * 1024  # a full disk is not retried until it has this much room
RECOVERED_RULE_ID = "guard.audit-recovered"
TORN_RULE_ID = "guard.audit-torn-tail"
RETENTION_RULE_ID = "guard.audit-retention"


def canonical(event: dict[str, Any]) -> bytes:
    """Canonical JSON for hashing: sorted keys, no spaces, UTF-8. A lone surrogate (a byte
    that was not UTF-8, kept by surrogateescape) is written as its ``\\udcXX`` JSON escape,
    so the line stays valid UTF-8 and reads back to the same string."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8", "backslashreplace")


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
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
                 budget: int | None = None) -> None:
        self.path = path
        self.budget = budget
        if budget and not max_bytes:
            max_bytes = max(1, budget // 10)  # a budget needs rotation to act on
        self.max_bytes = max_bytes
        self.key = key
        self.checkpoint_every = max(1, checkpoint_every)
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._size = 0  # bytes of whole lines in the open file
        self._since_checkpoint = 0
        self._torn: dict[str, Any] | None = None
        self.seq, self.prev = self._tail() if path is not None else (0, GENESIS)
        self.broken: str | None = None
        self._broken_since = 0.0
        self._last_try = 0.0
        self._refused = 0
        self._rotating = False  # the events rotation writes never rotate again
        self.retry_seconds = RETRY_SECONDS
        self.closed = False
        self.on_write: Callable[[float, bool], None] | None = None  # (seconds, written)

    def open(self) -> None:
        if self.path is None:
            return
        with self._lock:
            self._open()
            if self._torn is not None:
                torn, self._torn = self._torn, None
                self._append(system_event(
                    TORN_RULE_ID, "repair",
                    f"the log ended with a torn line ({torn['size']} bytes, sha256 "
                    f"{torn['sha256']}), left by an unclean stop; it was moved to "
                    f"{torn['moved_to']} and the chain continues from seq {self.seq}",
                    torn=torn))

    def write(self, event: dict[str, Any]) -> dict[str, Any]:
        """Number, chain and append ``event``; returns it with ``seq``, ``prev`` and ``hash``.
        Raises AuditError when the log cannot be written, ValueError when the event cannot
        be serialized (the log is then unchanged). ``on_write`` (metrics) sees how long
        each write took and whether the log took it."""
        return self.write_line(event)[0]

    def write_line(self, event: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """:meth:`write`, and the line written (the event's JSON, as the log holds it)."""
        t0 = time.perf_counter()
        try:
            with self._lock:
                full, line = self._append(event)
                self._since_checkpoint += 1
                if self.key is not None and self._since_checkpoint >= self.checkpoint_every:
                    self._checkpoint("interval")
        except AuditError:
            if self.on_write is not None:
                self.on_write(time.perf_counter() - t0, False)
            raise
        if self.on_write is not None:
            self.on_write(time.perf_counter() - t0, True)
        return full, line

    def ready(self) -> None:
        """Raise AuditError unless the log can be written (trying to heal it first)."""
        if self.broken is None:
            return
        with self._lock:
            self._heal()

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
            self._close_file()

    # internals (lock held)

    def _open(self) -> None:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)
            self._size = self._file.seek(0, os.SEEK_END)
        except OSError as e:
            self._close_file()
            message = f"cannot open audit log {self.path}: {e.strerror or e}"
            if self.broken is None:
                self.broken = message
            raise AuditError(message) from e

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _append(self, event: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        if self.broken:
            self._heal()
        if self.closed:
            raise AuditError("the audit log is closed (guard is shutting down)")
        full, line = self._numbered(event)
        if self.path is not None:
            if self._file is None:
                self._open()
            if event.get("kind") != "checkpoint" and self.max_bytes and self._size and \
                    not self._rotating and self._size + len(line) > self.max_bytes:
                self._rotate()  # may write events: number this one again after them
                full, line = self._numbered(event)
            self._put(line)
        self.seq, self.prev = full["seq"], full["hash"]
        return full, line

    def _numbered(self, event: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        full = {"v": SCHEMA_VERSION, "seq": self.seq + 1, **event, "prev": self.prev}
        full.pop("hash", None)
        # One serialization serves both: the line is the canonical JSON the hash covers,
        # with the hash appended as its last member (readers re-canonicalize to verify).
        body = canonical(full)
        if b"\\ud" in body and canonical(json.loads(body)) != body:
            # Surrogates that would pair up when read back: the line would not verify.
            raise ValueError("the event does not read back as written (unpaired surrogates)")
        full["hash"] = hashlib.sha256(body).hexdigest()
        return full, body[:-1] + b',"hash":"' + full["hash"].encode() + b'"}\n'

    def _checkpoint(self, reason: str) -> dict[str, Any]:
        assert self.key is not None
        body = {"kind": "checkpoint", "time": iso_time(time.time()), "reason": reason,
                "alg": self.key.alg, "key_id": self.key.key_id}
        full = {"v": SCHEMA_VERSION, "seq": self.seq + 1, **body, "prev": self.prev}
        body["sig"] = self.key.sign(signed_bytes(full))
        written, _ = self._append(body)
        self._since_checkpoint = 0
        if self._file is not None:
            self._sync()
        return written

    def _put(self, line: bytes) -> None:
        assert self._file is not None
        view = memoryview(line)
        try:
            while view:
                n = self._file.write(view)
                if not n:
                    raise OSError(28, "No space left on device (short write)")
                view = view[n:]
        except (OSError, ValueError) as e:
            self._fail(f"cannot write audit log {self.path}: {e}")
            self._refused += 1
            raise AuditError(self.broken) from e
        self._size += len(line)

    def _fail(self, message: str) -> None:
        if self.broken is None:
            self.broken, self._broken_since, self._refused = message, time.time(), 0
        self._last_try = time.monotonic()

    def _heal(self) -> None:
        """Try to make a broken log writable again (at most every RETRY_SECONDS): cut the
        half-written line off, reopen, and record the outage. Raises while still broken."""
        assert self.broken is not None
        now = time.monotonic()
        if self.path is None or now - self._last_try < self.retry_seconds \
                or _free_bytes(self.path.parent) < HEAL_MIN_FREE:
            self._refused += 1
            raise AuditError(self.broken)
        self._last_try = now
        broken, since, refused = self.broken, self._broken_since, self._refused + 1
        good = self._size
        self._close_file()
        try:
            if self.path.exists() and self.path.stat().st_size > good:
                os.truncate(self.path, good)
            self._open()
            self.broken = None
            self._append(system_event(
                RECOVERED_RULE_ID, "recover",
                f"the audit log is writable again after {time.time() - since:.1f} s; "
                f"{refused} event(s) could not be written meanwhile (their requests were "
                f"refused); the failure was: {broken}", refused=refused))
            if self.key is not None:
                self._checkpoint("recovered")
        except (OSError, AuditError) as e:
            self._close_file()
            self.broken, self._broken_since, self._refused = broken, since, refused
            raise AuditError(broken) from e

    def _rotate(self) -> None:
        assert self.path is not None and self._file is not None
        if self.key is not None:
            self._checkpoint("rotate")
        older = rotated(self.path)
        number = int(older[-1].name.rsplit(".", 1)[1]) + 1 if older else 1
        try:
            self._sync()
            self._close_file()
            os.rename(self.path, self.path.with_name(f"{self.path.name}.{number}"))
        except OSError as e:
            self._fail(f"cannot rotate audit log {self.path}: {e.strerror or e}")
            raise AuditError(self.broken) from e
        self._open()
        self._rotating = True
        try:
            if self.key is not None:
                self._checkpoint("start")  # a signed start: --partial can trust this file
            if self.budget:
                self._enforce_budget()
        finally:
            self._rotating = False

    def _enforce_budget(self) -> None:
        """Delete the oldest rotated files while the log exceeds its budget, recording what
        went so that verify can prove what is left."""
        assert self.path is not None and self.budget
        files = rotated(self.path)
        total = self._size + sum(_size(p) for p in files)
        for old in files:
            if total <= self.budget:
                break
            first, last, last_hash = _span(old)
            try:
                size = old.stat().st_size
                old.unlink()
            except OSError:
                continue
            total -= size
            self._append(system_event(
                RETENTION_RULE_ID, "retention",
                f"{old.name} deleted to keep the log within its budget of {self.budget} bytes "
                f"(seq {first} to {last})",
                removed_file=old.name, removed_first_seq=first, removed_through_seq=last,
                removed_last_hash=last_hash))

    def _sync(self) -> None:
        assert self._file is not None
        try:
            os.fsync(self._file.fileno())
        except OSError as e:
            if e.errno not in (22,):  # EINVAL: character devices cannot be synced
                self._fail(f"cannot write audit log {self.path}: {e}")
                raise AuditError(self.broken) from e

    # the existing log

    def _tail(self) -> tuple[int, str]:
        """Continue the chain of an existing log: its last sequence number and hash. A torn
        last line of the active file is moved aside (see the module docstring)."""
        assert self.path is not None
        for candidate in [self.path, *reversed(rotated(self.path))]:
            if candidate.is_file() and candidate.stat().st_size > 0:
                if candidate == self.path:
                    try:
                        self._repair_torn_tail(candidate)
                    except OSError as e:
                        raise AuditError(f"audit log {candidate} ends with a torn line that "
                                         f"cannot be moved aside: {e.strerror or e}") from e
                    if candidate.stat().st_size == 0:
                        continue
                return _last_event(candidate)
        return 0, GENESIS

    def _repair_torn_tail(self, path: Path) -> None:
        with open(path, "rb+") as f:
            end = f.seek(0, os.SEEK_END)
            pos, tail = end, b""
            while pos > 0 and b"\n" not in tail:
                step = min(pos, 65536)
                pos -= step
                f.seek(pos)
                tail = f.read(step) + tail
            cut = tail.rfind(b"\n")
            torn = tail[cut + 1:]
            if not torn:
                return
            start = end - len(torn)
            if _whole_event(torn):  # complete but for its newline
                f.seek(end)
                f.write(b"\n")
                return
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            aside = path.with_name(f"{path.name}.torn-{stamp}")
            aside.write_bytes(torn)
            f.truncate(start)
        self._torn = {"size": len(torn), "sha256": hashlib.sha256(torn).hexdigest(),
                      "moved_to": aside.name, "offset": start}


def _free_bytes(directory: Path) -> int:
    """Free space for an unprivileged writer, or a large number when it cannot be told
    (the write itself then decides)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return 1 << 62
    if st.f_blocks == 0:  # not a disk (a character device's filesystem)
        return 1 << 62
    return st.f_bavail * st.f_frsize


def _whole_event(line: bytes) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("hash") == event_hash(event)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _span(path: Path) -> tuple[int | None, int | None, str | None]:
    """First and last seq of a log file, and its last hash."""
    first: int | None = None
    try:
        with open(path, "rb") as f:
            line = f.readline()
            first = int(json.loads(line)["seq"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        last, last_hash = _last_event(path)
    except AuditError:
        return first, None, None
    return first, last, last_hash


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
