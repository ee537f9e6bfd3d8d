"""guard audit list / show / summary on a log recorded from a real agent session:
7 flows in two sandboxes (see conftest.agent_session)."""

from __future__ import annotations

import json

import pytest

from guard.cli import main


def listed(capsys, log, *args: str) -> list[dict]:
    assert main(["audit", "list", str(log), "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize(("args", "seqs"), [
    ((), [1, 2, 3, 4, 5, 6, 7]),
    (("--action", "block"), [3, 5, 6]),
    (("--action", "allow", "--action", "simulate"), [1, 2, 4, 7]),
    (("--host", "evil.test"), [3, 6]),
    (("--host", "*.test"), [2, 3, 6]),
    (("--rule", "stripe.*"), [1, 7]),
    (("--rule", "guard.default-deny"), [5]),
    (("--sandbox", "agent-b", "--status", "4xx"), [5, 6, 7]),
    (("--status", "202"), [2]),
    (("--upstream",), [4]),
    (("--since", "2000-01-01", "--until", "2999-01-01"), [1, 2, 3, 4, 5, 6, 7]),
    (("--since", "2999-01-01"), []),
])
def test_list_filters(recorded_log, capsys, args, seqs):
    assert [e["seq"] for e in listed(capsys, recorded_log, *args)] == seqs


def test_list_prints_a_readable_table(recorded_log, capsys):
    assert main(["audit", "list", str(recorded_log), "--action", "block"]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].split() == ["SEQ", "TIME", "SANDBOX", "ACTION", "ST", "RULE", "REQUEST"]
    assert rows[1].split()[2:] == ["agent-a", "block", "403", "audit-test.blocked", "POST",
                                   "https://evil.test/upload"]
    assert len(rows) == 4 and "(3 event(s))" in err


def test_show_prints_one_event_in_full(recorded_log, capsys):
    assert main(["audit", "show", str(recorded_log), "4"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert (event["seq"], event["action"], event["upstream"]) == (4, "allow", True)
    assert event["response"]["body"]["text"] == '{"real": "world"}'
    assert main(["audit", "show", str(recorded_log), "99"]) == 1


def test_summary_counts_and_names_what_reached_the_real_world(recorded_log, capsys):
    assert main(["audit", "summary", str(recorded_log), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["by_action"] == {"simulate": 3, "block": 3, "allow": 1}
    assert s["by_sandbox"] == {"agent-a": 4, "agent-b": 3}
    assert s["by_rule"]["audit-test.blocked"] == 2
    assert s["top_blocked"][0] == {"endpoint": "POST evil.test/upload",
                                   "rule": "audit-test.blocked", "count": 2}
    assert s["reached_real_world"]["count"] == 1 and s["reached_real_world"]["seqs"] == [4]
    assert s["reached_real_world"]["endpoints"][0]["endpoint"].endswith("/allowed/docs")
    assert s["outbox"] == 1

    assert main(["audit", "summary", str(recorded_log)]) == 0
    text = capsys.readouterr().out
    assert "reached the real world: 1 request(s) (seq 4)" in text
    assert "2  POST evil.test/upload  audit-test.blocked" in text


def test_every_event_carries_the_v1_schema(recorded_log):
    events = [json.loads(x) for x in recorded_log.read_text().splitlines()]
    assert set(events[1]) == {
        "v", "seq", "kind", "time", "sandbox", "client", "method", "url", "host", "rule",
        "action", "reason", "status", "upstream", "duration_ms", "request", "response",
        "changes", "outbox", "prev", "hash"}
    mail = events[1]
    assert mail["request"]["body"]["text"].startswith('{"to": "boss@corp.test"')
    assert mail["changes"][0]["collection"] == "outbox"
    assert mail["changes"][0]["object"]["subject"] == "Q3 numbers"
    assert mail["outbox"] == [mail["changes"][0]["id"]]
