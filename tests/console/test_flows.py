"""The console's flow list on its own: what it keeps, merges, bounds and streams."""

from __future__ import annotations

import asyncio
from typing import Any

from guard.console.flows import MAX_UNMATCHED, Filters, FlowLog


def flow(seq: int, **fields: Any) -> dict[str, Any]:
    event = {"kind": "flow", "seq": seq, "time": "2026-01-01T00:00:00.000Z",
             "sandbox": "s1", "method": "GET", "url": "https://x.test/a", "host": "x.test",
             "rule": "x.read", "action": "simulate", "status": 200, "duration_ms": 1.0,
             "request": {"headers": [], "body": None},
             "response": {"headers": [], "body": None}, "changes": [], "outbox": [],
             "prev": "p", "hash": "h"}
    event.update(fields)
    return event


def test_an_allowed_flow_is_one_row_pending_until_its_end_arrives() -> None:
    log = FlowLog()
    log.observe({**flow(1, action="allow", rule="docs.allowed", status=None),
                 "kind": "request"})
    [row] = log.rows(Filters())
    assert row["pending"] and row["status"] is None
    v = log.version
    log.observe(flow(2, kind="flow", request_seq=1, action="allow", rule="docs.allowed",
                     status=200, duration_ms=12.5, request=None))
    [row] = log.rows(Filters())
    assert not row["pending"] and row["status"] == 200 and row["duration_ms"] == 12.5
    full = log.flows[row["id"]]
    assert full["request"] == {"headers": [], "body": None}  # kept from the request event
    assert full["end_seq"] == 2 and "hash" not in full and "prev" not in full
    assert [c["id"] for c in log.changed_since(v) or []] == [row["id"]]
    assert log.hits["docs.allowed"][0] == 1  # counted once, at its end


def test_the_log_keeps_only_the_last_flows_and_cuts_bodies() -> None:
    log = FlowLog(keep=3, body_limit=16)
    for i in range(10):
        log.observe(flow(i, response={"headers": [], "body": {"size": 100, "text": "y" * 100}}))
    assert len(log.flows) == 3
    assert [r["id"] for r in log.rows(Filters())] == [10, 9, 8]
    body = log.flows[10]["response"]["body"]
    assert body["truncated"] and len(body["text"]) == 16 and body["size"] == 100


def test_a_stream_too_far_behind_is_told_to_reload() -> None:
    log = FlowLog(keep=2)
    for i in range(10):
        log.observe(flow(i))
    assert log.changed_since(0) is None  # the changes kept start later
    assert log.changed_since(log.version) == []
    assert [r["id"] for r in log.changed_since(log.version - 1) or []] == [10]


def test_filters_match_sandbox_and_action_exactly_host_and_rule_as_substrings() -> None:
    log = FlowLog()
    log.observe(flow(1, sandbox="a", host="api.stripe.com", rule="stripe.customers.create"))
    log.observe(flow(2, sandbox="ab", host="slack.com", rule="slack.chat.post",
                     action="block"))
    ids = [r["id"] for r in log.rows(Filters(sandbox="a"))]
    assert ids == [1]
    assert [r["id"] for r in log.rows(Filters(host="stripe"))] == [1]
    assert [r["id"] for r in log.rows(Filters(rule="chat"))] == [2]
    assert [r["id"] for r in log.rows(Filters(action="block"))] == [2]
    assert log.rows(Filters(action="allow")) == []


def test_requests_no_rule_matched_are_grouped_and_bounded() -> None:
    log = FlowLog()
    for i in range(MAX_UNMATCHED + 50):
        log.observe(flow(i, rule="guard.default-deny", action="block",
                         url=f"https://x.test/p{i}?q=1", sandbox=f"s{i % 3}"))
    log.observe(flow(10_000, rule="guard.default-deny", action="block",
                     url=f"https://x.test/p{MAX_UNMATCHED + 49}?other=2"))
    assert len(log.unmatched) == MAX_UNMATCHED  # the oldest groups went
    last = log.unmatched[("GET", "x.test", f"/p{MAX_UNMATCHED + 49}")]
    assert last.count == 2  # the query is not part of the group
    assert log.hits["guard.default-deny"][0] == MAX_UNMATCHED + 51


def test_waiting_returns_when_a_flow_arrives_and_close_ends_every_wait() -> None:
    async def main() -> None:
        log = FlowLog()
        waiter = asyncio.create_task(log.wait(0, 30))
        await asyncio.sleep(0)
        log.observe(flow(1))
        await asyncio.wait_for(waiter, 5)
        second = asyncio.create_task(log.wait(log.version, 30))
        await asyncio.sleep(0)
        log.close()
        await asyncio.wait_for(second, 5)
        assert log.closed

    asyncio.run(main())


def test_events_that_are_not_flows_are_not_listed() -> None:
    log = FlowLog()
    log.observe({"kind": "websocket", "seq": 1, "rule": "r"})
    log.observe({"kind": "checkpoint", "seq": 2})
    log.observe({"kind": "system", "seq": 3, "rule": "guard.reload"})
    assert log.rows(Filters()) == [] and log.version == 0
