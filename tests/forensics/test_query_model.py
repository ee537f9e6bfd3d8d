"""The query model under `guard audit list/summary`: filters, times, and what counts as
having reached the real world, on hand-made events (the CLI tests use a recorded log)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from guard.forensics.query import Filter, outbox_records, parse_when, select, summary

NOW = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def ev(seq: int, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {"seq": seq, "time": f"2026-03-02T12:{seq:02d}:00.000Z",
                               "kind": "flow", "method": "POST", "host": "api.stripe.com",
                               "url": f"https://api.stripe.com/v1/charges?n={seq}",
                               "action": "simulate", "rule": "stripe.charges.create",
                               "status": 200, "sandbox": "sbx-a", "upstream": False}
    return {**base, **kw}


EVENTS = [
    ev(1),
    ev(2, action="block", rule="guard.default-deny", status=403, host="evil.test",
       url="https://evil.test/exfil?k=v", sandbox="sbx-b"),
    ev(3, action="allow", rule="pypi.allow", status=200, host="pypi.org",
       url="https://pypi.org/simple/requests/", upstream=True),
    ev(4, action="allow", rule="pypi.allow", status=None, host="pypi.org",
       url="https://pypi.org/simple/x/", upstream=False),
    ev(5, kind="system", action="reload", rule="guard.reload", host=None, url=None, status=None,
       sandbox=None, reason="rules changed"),
    ev(6, action="error", rule="slack.post", status=500, host="slack.com",
       url="https://slack.com/api/chat.postMessage"),
]


@pytest.mark.parametrize(("flt", "seqs"), [
    (Filter(host="*.stripe.com"), [1]),
    (Filter(host="API.STRIPE.COM"), [1]),          # hosts compare without case
    (Filter(action=["block", "error"]), [2, 6]),
    (Filter(rule="pypi.*"), [3, 4]),
    (Filter(status="4xx"), [2]),
    (Filter(status="5XX"), [6]),
    (Filter(status="200"), [1, 3]),
    (Filter(status="none"), [4, 5]),
    (Filter(sandbox="sbx-b"), [2]),
    (Filter(upstream=True), [3]),
    (Filter(kind=["system"]), [5]),
    (Filter(since=datetime(2026, 3, 2, 12, 3, tzinfo=UTC),
            until=datetime(2026, 3, 2, 12, 5, tzinfo=UTC)), [3, 4]),   # until is exclusive
    (Filter(host="pypi.org", upstream=False), [4]),  # every condition must hold
])
def test_a_filter_keeps_exactly_the_events_every_condition_holds_for(flt, seqs):
    assert [e["seq"] for e in select(EVENTS, flt)] == seqs


@pytest.mark.parametrize(("text", "iso"), [
    ("90s", "2026-03-02T12:28:30+00:00"),
    ("15m ago", "2026-03-02T12:15:00+00:00"),
    ("2H", "2026-03-02T10:30:00+00:00"),
    ("1w", "2026-02-23T12:30:00+00:00"),
    ("today", "2026-03-02T00:00:00+00:00"),
    ("yesterday", "2026-03-01T00:00:00+00:00"),
    ("2026-01-01", "2026-01-01T00:00:00+00:00"),             # no zone: UTC
    ("2026-01-01T10:00+02:00", "2026-01-01T10:00:00+02:00"),
])
def test_times_are_read_as_the_help_says(text, iso):
    assert parse_when(text, NOW).isoformat() == iso


@pytest.mark.parametrize("text", ["last week", "3 fortnights", "", "2026-13-01", "\x1b[2J"])
def test_an_unreadable_time_says_what_would_be_right(text):
    with pytest.raises(ValueError, match="cannot read .* as a time: give ISO 8601"):
        parse_when(text, NOW)


def test_summary_counts_requests_apart_from_guards_own_events():
    s = summary(EVENTS)
    assert s["events"] == 5 and s["reloads"] == 1
    assert [g["seq"] for g in s["guard_events"]] == [5]
    assert s["by_action"] == {"allow": 2, "simulate": 1, "block": 1, "error": 1}
    # only the allowed flow that connected reached the real world; the query is not
    # part of what it was aimed at
    assert s["reached_real_world"] == {
        "count": 1, "endpoints": [{"endpoint": "POST pypi.org/simple/requests/", "count": 1}],
        "seqs": [3]}
    assert s["allowed_without_connecting"] == [4]
    assert s["top_blocked"] == [
        {"endpoint": "POST evil.test/exfil", "rule": "guard.default-deny", "count": 1},
        {"endpoint": "POST slack.com/api/chat.postMessage", "rule": "slack.post", "count": 1}]
    assert s["first"] == "2026-03-02T12:01:00.000Z" and s["last"] == "2026-03-02T12:06:00.000Z"


def test_summary_of_nothing_is_empty_not_an_error():
    s = summary([])
    assert s["events"] == 0 and s["first"] is None and s["reached_real_world"]["count"] == 0


def test_the_outbox_keeps_each_records_latest_version_per_sandbox_and_forgets_deleted_ones():
    def change(op: str, id: str, **obj: object) -> dict[str, object]:
        return {"collection": "outbox", "op": op, "id": id, "object": obj or None}
    events = [
        ev(1, changes=[change("put", "m1", to="a@x.test"),
                       {"collection": "customers", "op": "put", "id": "cus_1", "object": {}}]),
        ev(2, sandbox="sbx-b", changes=[change("put", "m1", to="b@x.test")]),  # same id, other sandbox
        ev(3, changes=[change("put", "m1", to="a2@x.test"), change("put", "m2", to="c@x.test")]),
        ev(4, changes=[change("delete", "m2")]),
    ]
    got = [(r["sandbox"], r["id"], r["object"]["to"], r["seq"]) for r in outbox_records(events)]
    assert got == [("sbx-a", "m1", "a2@x.test", 3), ("sbx-b", "m1", "b@x.test", 2)]
