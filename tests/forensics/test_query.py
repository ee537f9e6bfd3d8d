"""guard audit list / show / summary on a log recorded from a real agent session:
7 flows in two sandboxes (see conftest.agent_session), 8 events: the allowed request is
seq 4 (written before it went out) and its completion seq 5; readers show one flow."""

from __future__ import annotations

import json

import pytest

from guard.cli import main


def listed(capsys, log, *args: str) -> list[dict]:
    assert main(["audit", "list", str(log), "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize(("args", "seqs"), [
    ((), [1, 2, 3, 4, 6, 7, 8]),
    (("--action", "block"), [3, 6, 7]),
    (("--action", "allow", "--action", "simulate"), [1, 2, 4, 8]),
    (("--host", "evil.test"), [3, 7]),
    (("--host", "*.test"), [2, 3, 7]),
    (("--rule", "stripe.*"), [1, 8]),
    (("--rule", "guard.default-deny"), [6]),
    (("--sandbox", "agent-b", "--status", "4xx"), [6, 7, 8]),
    (("--status", "202"), [2]),
    (("--upstream",), [4]),
    (("--since", "2000-01-01", "--until", "2999-01-01"), [1, 2, 3, 4, 6, 7, 8]),
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
    assert main(["audit", "show", str(recorded_log), "4", "--json"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert (event["seq"], event["end_seq"], event["action"], event["upstream"]) == \
        (4, 5, "allow", True)
    assert event["response"]["body"]["text"] == '{"real": "world"}'
    assert event["request"]["headers"]  # from the request event
    assert main(["audit", "show", str(recorded_log), "5", "--json"]) == 0  # its completion
    assert json.loads(capsys.readouterr().out)["seq"] == 4
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


def test_every_event_carries_the_v2_schema(recorded_log):
    events = [json.loads(x) for x in recorded_log.read_text().splitlines()]
    assert {e["v"] for e in events} == {2}
    assert set(events[1]) == {
        "v", "seq", "kind", "time", "sandbox", "client", "method", "url", "host", "rule",
        "action", "reason", "status", "upstream", "duration_ms", "request", "response",
        "changes", "outbox", "prev", "hash"}
    mail = events[1]
    assert mail["request"]["body"]["text"].startswith('{"to": "boss@corp.test"')
    assert mail["changes"][0]["collection"] == "outbox"
    assert mail["changes"][0]["object"]["subject"] == "Q3 numbers"
    assert mail["outbox"] == [mail["changes"][0]["id"]]


def test_an_allowed_flow_is_a_request_event_then_a_completion(recorded_log):
    events = [json.loads(x) for x in recorded_log.read_text().splitlines()]
    request, completion = events[3], events[4]
    assert (request["kind"], request["action"], request["status"]) == ("request", "allow", None)
    assert request["request"]["headers"] and "response" not in request
    assert completion["kind"] == "flow" and completion["request_seq"] == request["seq"]
    assert completion["upstream"] is True and completion["status"] == 200
    assert "request" not in completion and completion["url"] == request["url"]
