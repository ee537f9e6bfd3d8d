"""guard replay: re-deciding a recorded session under other rules (a CI gate that fails when
something kept in the sandbox would now reach the real world), and re-sending it through a
running guard."""

from __future__ import annotations

import json
from pathlib import Path

from guard.cli import main
from tests.audit.audit_helpers import RULES, session
from tests.sandboxes import KEY_FILE


def replay(capsys, log: Path, *args: str | Path) -> tuple[int, str, str]:
    code = main(["replay", str(log), *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def pack(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "proposed.yaml"
    p.write_text(text)
    return p


def test_the_same_rules_change_nothing_and_exit_0(recorded_log, capsys):
    code, out, err = replay(capsys, recorded_log, "--rules", RULES)
    assert code == 0
    assert out == ""
    assert "replayed 7 request(s): 0 decision(s) would change, 0 would newly reach" in err


def test_a_loosened_rule_set_fails_the_gate_naming_the_requests(recorded_log, tmp_path, capsys):
    loosen = pack(tmp_path, """
pack: proposed
hosts: [evil.test]
rules:
  - id: proposed.uploads
    priority: 10
    match: {method: POST, path: /upload}
    action: allow
""")
    code, out, err = replay(capsys, recorded_log, "--rules", RULES, "--rules", loosen)
    assert code == 1
    rows = out.splitlines()
    assert len(rows) == 2 and all("LOOSENED" in r for r in rows)
    assert "block (audit-test.blocked) -> allow (proposed.uploads)" in rows[0]
    assert "seq 3, 7" in err


def test_a_rule_allowing_a_default_denied_host_fails_the_gate(recorded_log, tmp_path, capsys):
    allow = pack(tmp_path, """
pack: proposed
hosts: [unknown.example.org]
rules:
  - {id: proposed.anything, action: allow}
""")
    code, out, err = replay(capsys, recorded_log, "--rules", RULES, "--rules", allow, "--json")
    assert code == 1
    [row] = [json.loads(x) for x in out.splitlines()]
    assert row["seq"] == 6 and row["loosened"]
    assert row["was"] == {"action": "block", "rule": "guard.default-deny"}


def test_a_tightened_rule_set_is_reported_but_passes(recorded_log, tmp_path, capsys):
    tight = pack(tmp_path, (RULES.read_text().split("  - id: audit-test.loopback")[0]))
    code, out, err = replay(capsys, recorded_log, "--rules", tight)
    assert code == 0
    assert "tightened  allow (audit-test.loopback) -> block (guard.default-deny)" in out
    assert "0 would newly reach the real world" in err


def test_replaying_under_no_rules_at_all_blocks_everything(recorded_log, capsys):
    code, out, _ = replay(capsys, recorded_log, "--no-builtin", "--all")
    assert code == 0
    assert len(out.splitlines()) == 7
    assert all("-> block (guard.default-deny)" in r for r in out.splitlines())


def test_send_reproduces_the_session_through_a_running_guard(recorded_log, guard_proxy,
                                                             capsys, echo_upstream):
    g = guard_proxy(RULES, sandbox_from="header")
    code, out, _ = replay(capsys, recorded_log, "--send", g.url, "--cacert", g.ca,
                          "--sandbox", "recorded", "--sandbox-key", str(KEY_FILE))
    assert code == 0, out
    rows = {int(r.split()[0]): r for r in out.splitlines()}
    assert "201" not in rows[1] and "-> 200 simulate (stripe.customers.create)" in rows[1]
    assert "-> 202 simulate (audit-test.mail.send)" in rows[2]
    assert "-> 403 block (audit-test.blocked)" in rows[3]
    assert "skipped: was allowed" in rows[4]
    assert "-> 403 block (guard.default-deny)" in rows[6]
    assert "-> 404 simulate" in rows[8]
    assert echo_upstream.connections == 0
    # the replayed mail landed in the recorded sandbox's outbox of the new guard
    outbox = session(g, "agent-a").get("https://guard.internal/outbox").json()["outbox"]
    assert [m["subject"] for m in outbox] == ["Q3 numbers"]
