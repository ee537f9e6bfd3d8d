"""Audit faults heal: writes resume by themselves when the disk has room again, a torn last
line does not stop the next start, and a size budget deletes old files while the rest
still verifies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from guard.audit import reader
from guard.audit.event import system_event
from guard.audit.writer import AuditWriter
from guard.cli import main
from guard.errors import AuditError
from tests.audit.audit_helpers import RULES, session


def verify(capsys, *args: str | Path) -> tuple[int, str]:
    code = main(["audit", "verify", *map(str, args)])
    return code, capsys.readouterr().out


def mail(s, i: int):
    return s.post("https://mail.test/send", json={"to": "a@b.c", "subject": f"n{i}",
                                                   "text": "x" * 500})



def test_writes_resume_by_themselves_when_space_returns(guard_proxy, small_disk, capsys):
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (200 * 1024))
    log = small_disk / "audit.jsonl"
    g = guard_proxy(RULES, audit=log)
    g.guard.audit.retry_seconds = 0.0  # retry on every request, not once a second
    s = session(g)
    answers = []
    for i in range(400):
        answers.append(mail(s, i).status_code)
        if answers[-1] == 503:
            break
    assert answers[0] == 202 and answers[-1] == 503
    assert mail(s, 1000).status_code == 503  # still full: still refused
    filler.unlink()  # an operator frees space
    after = [mail(s, 2000 + i).status_code for i in range(3)]
    assert after == [202, 202, 202]
    g.stop()

    code, out = verify(capsys, log)
    assert code == 0, out  # the half-written line of the failure was cut off
    raw = [json.loads(x) for x in log.read_text().splitlines()]
    recovered = [e for e in raw if e.get("rule") == "guard.audit-recovered"]
    # (a small recovery note may fit while a full event does not: it can flap until freed)
    assert recovered and recovered[-1]["refused"] >= 1
    assert "No space left on device" in recovered[-1]["reason"]
    flows = list(reader.events([log]))
    assert len([e for e in flows if e["status"] == 202]) == answers.count(202) + 3


def test_a_torn_last_line_is_moved_aside_and_recorded_in_the_new_chain(
        guard_proxy, log_copy, capsys):
    torn = b'{"v":2,"seq":9,"kind":"flow","time":"2026-'
    with open(log_copy, "ab") as f:
        f.write(torn)
    g = guard_proxy(RULES, audit=log_copy)
    assert mail(session(g), 1).status_code == 202
    g.stop()

    [aside] = log_copy.parent.glob("audit.jsonl.torn-*")
    assert aside.read_bytes() == torn
    raw = [json.loads(x) for x in log_copy.read_text().splitlines()]
    note = raw[8]
    assert (note["seq"], note["rule"]) == (9, "guard.audit-torn-tail")
    assert note["torn"]["sha256"] == hashlib.sha256(torn).hexdigest()
    assert note["torn"]["size"] == len(torn) and note["torn"]["moved_to"] == aside.name
    assert raw[9]["kind"] == "flow" and raw[9]["status"] == 202
    assert verify(capsys, log_copy)[0] == 0


def test_a_last_line_missing_only_its_newline_is_kept(log_copy):
    log_copy.write_bytes(log_copy.read_bytes().rstrip(b"\n"))
    w = AuditWriter(log_copy)
    w.open()
    w.write(system_event("test.after", "note", "after the repair"))
    w.close()
    lines = log_copy.read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == list(range(1, 10))
    assert not list(log_copy.parent.glob("*.torn-*"))


def test_a_budget_deletes_the_oldest_files_and_the_rest_still_verifies(tmp_path, capsys):
    log = tmp_path / "audit.jsonl"
    w = AuditWriter(log, max_bytes=2000, budget=6000)
    w.open()
    for i in range(120):
        w.write(system_event("test.filler", "note", f"event {i} " + "x" * 100))
    w.close()
    files = reader.log_files(log)
    assert sum(p.stat().st_size for p in files) <= 6000 + 2000
    assert not log.with_name("audit.jsonl.1").exists()  # the oldest went
    code, out = verify(capsys, log)
    assert code == 0, out
    assert "older events were deleted by the audit budget" in out
    kept = list(reader.events(reader.log_files(log), flows_only=False))
    retention = [e for e in kept if e.get("rule") == "guard.audit-retention"]
    assert any(e["removed_through_seq"] == kept[0]["seq"] - 1 and
               e["removed_last_hash"] == kept[0]["prev"] for e in retention)


def test_a_log_missing_its_oldest_file_without_a_record_of_why_fails(tmp_path, capsys):
    log = tmp_path / "audit.jsonl"
    w = AuditWriter(log, max_bytes=2000)
    w.open()
    for i in range(60):
        w.write(system_event("test.filler", "note", f"event {i} " + "x" * 100))
    w.close()
    log.with_name("audit.jsonl.1").unlink()  # deleted by hand, not by the budget
    code, out = verify(capsys, log)
    assert code == 1 and "FAIL: seq 1: missing: the log starts at seq" in out
    assert verify(capsys, log, "--partial")[0] == 0


def test_a_broken_writer_refuses_until_it_can_write(tmp_path):
    w = AuditWriter(Path("/dev/full"))
    w.open()
    w.retry_seconds = 0.0
    for _ in range(3):
        with pytest.raises(AuditError, match="No space left on device"):
            w.write(system_event("test", "note", "x"))
    with pytest.raises(AuditError):
        w.ready()
