"""Several writers (``guard run --workers N``, replicas) each keep their own hash chain;
``guard audit`` reads a directory or several logs as one stream merged by time and
verifies every chain on its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.audit.reader import chains, merged
from guard.audit.writer import AuditWriter
from guard.cli import main


def _flow(time: str, host: str) -> dict[str, object]:
    return {"v": 1, "kind": "flow", "time": time, "host": host, "method": "GET",
            "url": f"https://{host}/", "action": "block", "status": 403, "rule": "r",
            "sandbox": "s", "upstream": False}


@pytest.fixture
def two_logs(tmp_path: Path) -> Path:
    """Worker 0 and worker 1, their events interleaved in time; worker 0's log rotated."""
    d = tmp_path / "logs"
    w0 = AuditWriter(d / "audit.h-0.jsonl", max_bytes=600)
    w1 = AuditWriter(d / "audit.h-1.jsonl")
    w0.open()
    w1.open()
    for i in range(6):
        w0.write(_flow(f"2026-12-02T10:00:0{i}.000Z", f"a{i}.test"))
        w1.write(_flow(f"2026-12-02T10:00:0{i}.500Z", f"b{i}.test"))
    w0.close()
    w1.close()
    return d


def test_a_directory_is_every_writers_chain_with_its_rotated_files(two_logs: Path) -> None:
    groups = chains([two_logs])
    assert [[p.name for p in g][-1] for g in groups] == ["audit.h-0.jsonl", "audit.h-1.jsonl"]
    assert len(groups[0]) > 1  # rotated: PATH.1 ... PATH
    assert [e["host"] for e in merged(groups)] == [
        h for i in range(6) for h in (f"a{i}.test", f"b{i}.test")]


def test_files_of_one_log_named_together_stay_one_chain(two_logs: Path) -> None:
    files = sorted(two_logs.glob("audit.h-0.jsonl*"), key=lambda p: p.name)
    ordered = [*files[1:], files[0]]  # PATH.1 PATH.2 ... PATH
    assert chains(ordered) == [ordered]


def test_verify_checks_each_chain_and_names_the_broken_one(
        two_logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", str(two_logs)]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 chains intact" in out
    log = two_logs / "audit.h-1.jsonl"
    lines = log.read_text().splitlines()
    event = json.loads(lines[2])
    event["host"] = "changed.test"
    lines[2] = json.dumps(event)
    log.write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify", str(two_logs)]) == 1
    out = capsys.readouterr().out
    assert "FAIL: seq 3: altered" in out and "audit.h-1.jsonl" in out
    assert "1 of 2 chains intact" in out


def test_list_and_summary_read_every_writer_merged_by_time(
        two_logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "list", "--json", str(two_logs / "audit.h-1.jsonl"),
                 str(two_logs / "audit.h-0.jsonl")]) == 0
    times = [json.loads(line)["time"] for line in capsys.readouterr().out.splitlines()]
    assert times == sorted(times) and len(times) == 12
    assert main(["audit", "summary", "--json", str(two_logs)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 12


def test_list_names_each_events_log_and_show_refuses_a_seq_two_logs_have(
        two_logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Each writer numbers its own log, so seq 1 is in both: the table says whose each row
    # is, and audit show asks for the log rather than showing one of them.
    assert main(["audit", "list", str(two_logs)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:2] == ["LOG", "SEQ"]
    assert [r.split()[:2] for r in rows[1:3]] == [["audit.h-0.jsonl", "1"],
                                                 ["audit.h-1.jsonl", "1"]]
    assert {r.split()[0] for r in rows[1:]} == {"audit.h-0.jsonl", "audit.h-1.jsonl"}
    assert main(["audit", "show", str(two_logs), "1"]) == 2
    err = capsys.readouterr().err
    assert "seq 1 is in 2 logs" in err and "audit.h-1.jsonl" in err, err
    assert main(["audit", "show", "--json", str(two_logs / "audit.h-1.jsonl"), "1"]) == 0
    assert json.loads(capsys.readouterr().out)["host"] == "b0.test"
    assert main(["audit", "list", str(two_logs / "audit.h-1.jsonl")]) == 0  # one log: as ever
    assert capsys.readouterr().out.split()[0] == "SEQ"


def test_the_html_report_of_several_logs_shows_every_chain_and_each_events_log(
        two_logs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["audit", "export", "--html", str(out), str(two_logs)]) == 0
    page = out.read_text()
    assert "2 of 2 hash chains intact" in page
    assert page.count("audit.h-0.jsonl: intact") == 1 and "audit.h-1.jsonl: intact" in page
    assert "<td>audit.h-0.jsonl #1</td>" in page and "<td>audit.h-1.jsonl #1</td>" in page
    log = two_logs / "audit.h-1.jsonl"  # one chain broken: the report says which
    lines = log.read_text().splitlines()
    event = json.loads(lines[1])
    event["host"] = "changed.test"
    lines[1] = json.dumps(event)
    log.write_text("\n".join(lines) + "\n")
    assert main(["audit", "export", "--html", str(out), str(two_logs)]) == 0
    page = out.read_text()
    assert "1 of 2 hash chains intact" in page and "audit.h-1.jsonl: BROKEN at seq 2" in page
    single = tmp_path / "one.html"  # one log: as before
    assert main(["audit", "export", "--html", str(single), str(two_logs / "audit.h-0.jsonl")]) == 0
    assert "the hash chain is intact" in single.read_text()


def test_export_and_replay_read_every_writer_merged_by_time(
        two_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    har = tmp_path / "all.har"
    assert main(["audit", "export", "--har", str(har), str(two_logs)]) == 0
    entries = json.loads(har.read_text())["log"]["entries"]
    assert [e["request"]["url"] for e in entries] == [
        f"https://{h}/" for i in range(6) for h in (f"a{i}.test", f"b{i}.test")]
    capsys.readouterr()
    assert main(["replay", "--json", str(two_logs)]) in (0, 1)
    out = capsys.readouterr().out
    replayed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(replayed) == 12, out[:2000]
    # each writer numbers its own log: every outcome names its log beside its seq
    assert [(r["log"], r["seq"]) for r in replayed[:2]] == [("audit.h-0.jsonl", 1),
                                                           ("audit.h-1.jsonl", 1)]
    assert main(["replay", "--all", str(two_logs)]) in (0, 1)
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("audit.h-0.jsonl #1 ") and rows[1].startswith("audit.h-1.jsonl #1 ")
    assert main(["replay", "--all", str(two_logs / "audit.h-1.jsonl")]) in (0, 1)
    assert capsys.readouterr().out.split()[0] == "1"  # one log: its seq alone, as before


def test_event_times_are_written_as_datetime_writes_them() -> None:
    """iso_time formats each whole second once; the text is datetime's, rounding included."""
    import random
    from datetime import UTC, datetime

    from guard.audit.event import iso_time

    rand = random.Random(5)
    stamps = [rand.uniform(0, 4e9) for _ in range(20000)]
    stamps += [float(int(t)) + f for t in stamps[:500]
               for f in (0.0, 0.0005, 0.9995, 0.9999995, 0.9999996, 0.0000004, 0.0000005)]
    for ts in stamps:
        want = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
        assert iso_time(ts) == want.replace("+00:00", "Z"), ts
