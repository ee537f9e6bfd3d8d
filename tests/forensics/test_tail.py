"""guard audit tail [-f], guard's own events in list/summary/report, the readable show,
refusing files that are not audit logs, and times people type (--since yesterday).

The follow tests run the real command (``python -m guard audit tail -f``) and append to
the log it follows, as a running guard would."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from guard.audit.event import system_event
from guard.audit.writer import AuditWriter
from guard.cli import main

WAIT = 60.0  # a deadline for output that must come, never a measured time


def raw_lines(log: Path) -> list[str]:
    return [x for x in log.read_text().splitlines() if x.strip()]


def add_reload(log: Path, reason: str = "rules reloaded (a.yaml changed): 3 rules") -> int:
    """Append a guard.reload event as the reloader writes it, continuing the chain."""
    w = AuditWriter(log)
    w.open()
    try:
        return int(w.write(system_event("guard.reload", "reload", reason))["seq"])
    finally:
        w.close()


class Tail:
    """``guard audit tail -f ...`` in its own process, its stdout read line by line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "NO_COLOR": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "guard", "audit", "tail", "-f",
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            self.lines.put(text.rstrip("\n"))

    def next(self) -> str:
        try:
            return self.lines.get(timeout=WAIT)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError("guard audit tail -f printed nothing: " +
                                 (self.proc.stderr.read() if self.proc.stderr else "")) from None

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=WAIT)


def test_tail_prints_the_last_events_as_guard_run_prints_them(recorded_log, capsys):
    assert main(["audit", "tail", str(recorded_log), "-n", "2"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 2
    assert rows[0].split()[1:] == ["agent-b", "POST", "https://evil.test/upload", "block",
                                   "audit-test.blocked", "403", rows[0].split()[-1]]
    assert "GET https://api.stripe.com/v1/customers/cus_missing simulate" in rows[1]


def test_tail_takes_the_filters_of_list(recorded_log, capsys):
    assert main(["audit", "tail", str(recorded_log), "--action", "block", "--json"]) == 0
    found = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in found] == [3, 6, 7]


def test_tail_follow_prints_new_events_as_they_are_written_and_across_rotation(
        recorded_log, tmp_path):
    events = raw_lines(recorded_log)
    log = tmp_path / "audit.jsonl"
    log.write_text(events[0] + "\n")
    tail = Tail(str(log), "-n", "1")
    try:
        assert "POST https://api.stripe.com/v1/customers simulate" in tail.next()
        with open(log, "a") as f:  # a line written in two pieces is read once, whole
            f.write(events[1][:30])
            f.flush()
            f.write(events[1][30:] + "\n")
        assert "POST https://mail.test/send simulate" in tail.next()
        log.rename(tmp_path / "audit.jsonl.1")  # rotation, as the writer does it
        log.write_text(events[2] + "\n")
        assert "POST https://evil.test/upload block audit-test.blocked 403" in tail.next()
        # an allowed flow prints once, when it ends (its request event gets no line)
        with open(log, "a") as f:
            f.write(events[3] + "\n" + events[4] + "\n")
        assert "/allowed/docs allow" in tail.next()
    finally:
        tail.close()


def test_tail_follow_applies_filters_and_shows_reloads(log_copy):
    tail = Tail(str(log_copy), "-n", "1", "--action", "block", "--action", "reload")
    try:  # the last block first (so the tail is following), then what is written after
        assert "GET https://api.stripe.com/" not in (last := tail.next())
        assert "https://evil.test/upload block" in last
        add_reload(log_copy)
        assert "guard guard.reload rules reloaded (a.yaml changed): 3 rules" in tail.next()
    finally:
        tail.close()


def test_tail_follow_waits_for_the_default_log_of_a_fresh_confdir(tmp_path, recorded_log):
    home = tmp_path / "home"
    env = {**os.environ, "NO_COLOR": "1", "HOME": str(home)}
    env.pop("GUARD_CONFIG", None)
    env.pop("GUARD_AUDIT", None)
    env.pop("GUARD_CONFDIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "guard", "audit", "tail", "-f"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [out.put(x) for x in proc.stdout or ()],
                     daemon=True).start()
    try:
        (home / ".guard" / "audit").mkdir(parents=True)
        (home / ".guard" / "audit" / "audit.jsonl").write_text(
            raw_lines(recorded_log)[0] + "\n")
        assert "api.stripe.com/v1/customers simulate" in out.get(timeout=WAIT)
    finally:
        proc.terminate()
        proc.wait(timeout=WAIT)


def test_reloads_are_listed_summarized_and_reported(log_copy, tmp_path, capsys):
    seq = add_reload(log_copy)
    assert main(["audit", "list", str(log_copy), "--json", "--kind", "system"]) == 0
    [e] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (e["seq"], e["rule"], e["action"]) == (seq, "guard.reload", "reload")
    assert main(["audit", "list", str(log_copy)]) == 0
    table = capsys.readouterr().out
    assert f"{seq:>6}" in table and "guard.reload" in table and "rules reloaded" in table
    assert main(["audit", "summary", str(log_copy), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["reloads"] == 1 and s["guard_events"][0]["seq"] == seq
    assert s["events"] == 7  # a reload is not counted as a request
    assert main(["audit", "summary", str(log_copy)]) == 0
    assert "guard.reload reload: rules reloaded" in capsys.readouterr().out
    report = tmp_path / "r.html"
    assert main(["audit", "export", str(log_copy), "--html", str(report)]) == 0
    html = report.read_text()
    assert 'id="guard-events-table"' in html and "rules reloaded (a.yaml changed)" in html
    assert 'data-value="7"' in html.split('id="fig-total"')[1][:40]


def test_list_heading_sits_over_its_values(recorded_log, capsys):
    assert main(["audit", "list", str(recorded_log)]) == 0
    head, first = capsys.readouterr().out.splitlines()[:2]
    for name in ("TIME", "SANDBOX", "ACTION", "RULE", "REQUEST"):
        col = head.index(name)
        assert first[col] != " " and (col == 0 or first[col - 1] == " "), name


def test_show_is_a_readable_request_and_response(recorded_log, capsys):
    assert main(["audit", "show", str(recorded_log), "4"]) == 0
    out = capsys.readouterr().out
    first, *rest = out.splitlines()
    assert first.startswith("GET http://127.0.0.1:") and first.endswith("/allowed/docs")
    assert rest[1].strip().startswith("allow by ")
    assert "upstream: yes" in rest[2]
    assert out.index("request headers:") < out.index("response body")
    assert '"real": "world"' in out


@pytest.mark.parametrize("content, why", [
    ('{\n  "log": {"version": "1.2", "entries": []}\n}\n', "several lines"),
    ('{"log": {"version": "1.2", "entries": []}}\n', "HAR file"),
    ('{"format": "guard-world", "objects": {}}\n', "without v, seq and hash"),
    ("not json at all\n", "not JSON lines"),
])
def test_list_refuses_a_file_that_is_not_an_audit_log(tmp_path, capsys, content, why):
    f = tmp_path / "x.json"
    f.write_text(content)
    for cmd in ("list", "summary", "tail"):
        assert main(["audit", cmd, str(f)]) == 2
        err = capsys.readouterr().err
        assert f"{f} is not an audit log" in err and why in err


def test_list_refuses_an_exported_har(recorded_log, tmp_path, capsys):
    har = tmp_path / "s.har"
    assert main(["audit", "export", str(recorded_log), "--har", str(har)]) == 0
    capsys.readouterr()
    assert main(["audit", "list", str(har)]) == 2
    assert "is not an audit log" in capsys.readouterr().err


def test_since_takes_words_and_times_ago(recorded_log, capsys):
    for when in ("yesterday", "2h", "today"):
        assert main(["audit", "list", str(recorded_log), "--json", "--since", when]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 7
    assert main(["audit", "list", str(recorded_log), "--json", "--until", "1h"]) == 0
    assert capsys.readouterr().out == ""


def test_since_explains_what_it_takes():
    proc = subprocess.run([sys.executable, "-m", "guard", "audit", "list", "x.jsonl",
                           "--since", "yesterdy"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "cannot read 'yesterdy' as a time" in proc.stderr
    assert "a time ago (90s, 15m, 2h, 3d, 1w), today, yesterday" in proc.stderr
    assert "parse_time" not in proc.stderr


def test_without_file_every_command_reads_guard_runs_log_or_says_where_it_would_be(
        tmp_path, recorded_log):
    env = {**os.environ, "HOME": str(tmp_path)}
    for name in ("GUARD_CONFIG", "GUARD_AUDIT", "GUARD_CONFDIR"):
        env.pop(name, None)
    log = tmp_path / ".guard" / "audit" / "audit.jsonl"
    for cmd in (["list"], ["verify"], ["summary"], ["show", "1"], ["tail"]):
        proc = subprocess.run([sys.executable, "-m", "guard", "audit", *cmd],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2, cmd
        assert f"no audit log at {log} (guard run writes it there" in proc.stderr, cmd
    log.parent.mkdir(parents=True)
    log.write_bytes(recorded_log.read_bytes())
    for cmd in (["list"], ["verify"], ["show", "1"]):
        proc = subprocess.run([sys.executable, "-m", "guard", "audit", *cmd],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, (cmd, proc.stderr)
    assert "POST https://api.stripe.com/v1/customers" in proc.stdout
