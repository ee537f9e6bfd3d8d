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
from guard.audit.writer import (
    GENESIS,
    RETENTION_RULE_ID,
    SUPPORTED_VERSIONS,
    event_hash,
    signed_bytes,
)


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
    # A log whose oldest files the audit budget deleted starts after seq 1; it is accepted
    # when an event later in the chain records that deletion, ending exactly before it.
    unexplained_start: tuple[int, str, str] | None = None
    for line in lines(files):
        e = line.event
        if e is None:
            return v.fail(expected or 1, f"unreadable line ({line.problem})", line.where)
        seq = e.get("seq")
        if expected is None:
            if isinstance(seq, int) and seq > 1:
                expected, prev = seq, str(e.get("prev"))
                if partial:
                    v.notes.append(f"the log starts at seq {seq} (partial verification)")
                else:
                    unexplained_start = (seq, prev, line.where)
            else:
                expected = 1
        if e.get("v") not in SUPPORTED_VERSIONS:
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
        if unexplained_start is not None and e.get("rule") == RETENTION_RULE_ID \
                and e.get("removed_through_seq") == unexplained_start[0] - 1 \
                and e.get("removed_last_hash") == unexplained_start[1]:
            v.notes.append(f"the log starts at seq {unexplained_start[0]}: older events were "
                           f"deleted by the audit budget, as seq {seq} records")
            unexplained_start = None
        if e.get("kind") == "checkpoint":
            v.checkpoints += 1
            if key is not None:
                problem = _checkpoint_problem(e, key)
                if problem:
                    return v.fail(expected, problem, line.where)
                v.signed += 1
                last_signed = expected
        elif e.get("kind", "flow") in ("flow", "request"):
            v.flows += e.get("kind", "flow") == "flow"
        v.events += 1
        prev, last = str(e["hash"]), e
        expected += 1
    if unexplained_start is not None:
        seq, _, where = unexplained_start
        return v.fail(1, f"missing: the log starts at seq {seq} and nothing in it records why "
                      "(older files removed? pass --partial to verify what is left)", where)
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
    elif v.events:
        v.notes.append("the log has no signed checkpoints: events cut off its end cannot be "
                       "detected (run guard with --audit-key to sign it)")
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
