"""Prove an audit log intact, or name the first event where it is not.

Each event must have the next sequence number, carry the hash of the event
before it (``prev``) and hash to its own ``hash``. That catches an event
altered, removed, inserted or moved, as long as the tamperer did not also
recompute every hash after it: a plain hash chain cannot stop that. Signed
checkpoints (``--audit-key``) can: their signature covers the chain up to them,
and with the key, verify also demands that the log end with a signed
``shutdown`` checkpoint, so cutting events off the end shows too.

>>> verify([]).ok
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.audit.reader import lines
from guard.audit.signing import Key
from guard.audit.writer import GENESIS, SCHEMA_VERSION, event_hash, signed_bytes


@dataclass
class Verdict:
    """The outcome: ``ok``, or the first bad sequence number and what is wrong there."""

    ok: bool = True
    events: int = 0
    flows: int = 0
    checkpoints: int = 0
    signed: int = 0  # checkpoints whose signature was checked with the key
    first_bad: int | None = None
    problem: str = ""
    where: str = ""
    last_seq: int = 0
    last_hash: str = GENESIS
    notes: list[str] = field(default_factory=list)

    def fail(self, seq: int, problem: str, where: str = "") -> Verdict:
        self.ok, self.first_bad, self.problem, self.where = False, seq, problem, where
        return self


def verify(files: Iterable[Path], key: Key | None = None, *, partial: bool = False) -> Verdict:
    """Check the chain over ``files`` (oldest first). ``partial`` accepts a log whose
    first event is not seq 1 (older files deleted by retention)."""
    v = Verdict()
    expected: int | None = None
    prev = GENESIS
    last: dict[str, Any] | None = None
    last_signed = 0
    for line in lines(files):
        e = line.event
        if e is None:
            return v.fail(expected or 1, f"unreadable line ({line.problem})", line.where)
        seq = e.get("seq")
        if expected is None:
            if partial and isinstance(seq, int):
                expected, prev = seq, str(e.get("prev"))
                v.notes.append(f"the log starts at seq {seq} (partial verification)")
            else:
                expected = 1
        if e.get("v") != SCHEMA_VERSION:
            return v.fail(expected, f"unsupported schema version {e.get('v')!r}", line.where)
        if seq != expected:
            return v.fail(expected, _sequence_problem(expected, seq), line.where)
        if e.get("prev") != prev:
            return v.fail(expected, f"does not chain to seq {expected - 1}: its prev hash "
                          f"differs from that event's hash (seq {expected - 1} was altered and "
                          "re-hashed, or events were removed or inserted)", line.where)
        if event_hash(e) != e.get("hash"):
            return v.fail(expected, "altered: its content does not match its hash",
                          line.where)
        if e.get("kind") == "checkpoint":
            v.checkpoints += 1
            if key is not None:
                problem = _checkpoint_problem(e, key)
                if problem:
                    return v.fail(expected, problem, line.where)
                v.signed += 1
                last_signed = expected
        else:
            v.flows += 1
        v.events += 1
        prev, last = str(e["hash"]), e
        expected += 1
    if last is not None:
        v.last_seq, v.last_hash = int(last["seq"]), str(last["hash"])
    if key is not None:
        ended = last is not None and last.get("kind") == "checkpoint" \
            and last.get("reason") == "shutdown"
        if not ended:
            after = f"the last signed checkpoint is seq {last_signed}" if last_signed else \
                "it has no signed checkpoint at all"
            return v.fail(v.last_seq + 1, f"the log ends at seq {v.last_seq} without a signed "
                          f"shutdown checkpoint ({after}): events after it may have been cut "
                          "off, or guard did not shut down cleanly")
    elif v.checkpoints:
        v.notes.append(f"{v.checkpoints} signed checkpoint(s) not checked: pass --key to "
                       "check them and to detect a truncated end")
    return v


def _sequence_problem(expected: int, seq: Any) -> str:
    if isinstance(seq, int) and seq > expected:
        return f"missing: the next event is seq {seq} (removed, or events were reordered)"
    return (f"out of place: found seq {seq!r} where seq {expected} belongs (an event was "
            "inserted or the order changed)")


def _checkpoint_problem(e: dict[str, Any], key: Key) -> str:
    if e.get("alg") != key.alg or e.get("key_id") != key.key_id:
        return (f"checkpoint signed with {e.get('alg')} key {e.get('key_id')}, not with the "
                f"given {key.alg} key {key.key_id}")
    if not key.verify(signed_bytes(e), str(e.get("sig", ""))):
        return "checkpoint signature is invalid: the chain up to it was changed, or it was forged"
    return ""
