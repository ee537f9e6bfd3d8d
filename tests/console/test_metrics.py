"""``/metrics`` against a real guard: the counters move with real requests through the
proxy, labels stay bounded whatever agents send, and scraping needs the token."""

from __future__ import annotations

import httpx

from guard.metrics import Histogram, Metrics, world_totals
from guard.proxy.embedded import RunningGuard
from tests.console.console_helpers import admin, agent, moved, sandbox, scrape, value


def test_counters_move_with_real_requests_through_the_proxy(console_guard: RunningGuard,
                                                            upstream_site) -> None:
    name = sandbox("metrics")
    before = scrape(console_guard)
    with agent(console_guard, name) as a:
        for _ in range(2):
            assert a.post("http://shop.test/orders", json={}).status_code == 201
        assert a.get("http://shop.test/admin/").status_code == 403
        assert a.get(f"http://docs.test:{upstream_site.port}/x").status_code == 200
        assert a.get("http://no-rule.test/").status_code == 403
    after = scrape(console_guard)
    req = "guard_requests_total"
    assert moved(before, after, req, action="simulate", rule="shop.orders.create") == 2
    assert moved(before, after, req, action="block", rule="shop.blocked") == 1
    assert moved(before, after, req, action="allow", rule="docs.allowed") == 1
    assert moved(before, after, req, action="block", rule="guard.default-deny") == 1
    assert moved(before, after, "guard_decision_seconds_count", action="simulate") == 2
    assert moved(before, after, "guard_decision_seconds_count", action="block") == 2
    assert moved(before, after, "guard_decision_seconds_count", action="allow") == 1
    assert moved(before, after, "guard_response_seconds_count", action="allow") == 1
    assert moved(before, after, "guard_response_seconds_sum", action="allow") > 0
    # an allowed flow is two events (its request, then its end): six events for five flows
    assert moved(before, after, "guard_audit_write_seconds_count") == 6
    assert value(after, "guard_audit_write_failures_total") == 0
    assert value(after, "guard_audit_writable") == 1
    assert value(after, "guard_rules") > 100  # the built-in packs and the test's own
    inf = value(after, "guard_response_seconds_bucket", action="simulate", le="+Inf")
    assert inf == value(after, "guard_response_seconds_count", action="simulate")


def test_worlds_and_objects_and_sandboxes_are_counted(console_guard: RunningGuard) -> None:
    metrics = console_guard.guard.metrics
    assert metrics is not None
    metrics.gauges.worlds = world_totals(console_guard.worlds, every=0)  # no caching here
    before = scrape(console_guard)
    with agent(console_guard, sandbox("objects")) as a:
        a.post("https://api.stripe.com/v1/customers", data={"email": "a@x.test"},
               headers={"Authorization": "Bearer sk_test_1"})
    after = scrape(console_guard)
    assert moved(before, after, "guard_worlds") == 1
    assert moved(before, after, "guard_world_objects") >= 1
    assert ("guard_sandboxes", ()) in after  # registered through the control plane: none
    with admin(console_guard) as c:
        assert c.post("/v1/sandboxes", json={"id": sandbox("registered")}).status_code == 201
    assert moved(after, scrape(console_guard), "guard_sandboxes") == 1


def test_labels_stay_bounded_whatever_paths_hosts_and_sandboxes_agents_use(
        console_guard: RunningGuard) -> None:
    scrape(console_guard)  # the families exist
    with agent(console_guard, sandbox("card")) as a:  # every series the loop touches
        a.get("http://warm.test/")
        a.post("http://shop.test/orders", json={"i": -1})
    before = scrape(console_guard)
    for i in range(30):
        with agent(console_guard, sandbox(f"card{i}")) as a:
            a.get(f"http://host{i}.test/p/{i}?q={i}")
            a.post("http://shop.test/orders", json={"i": i})
    after = scrape(console_guard)
    assert len(after) == len(before)  # no new series: not per sandbox, host or path
    assert moved(before, after, "guard_requests_total", action="block",
                 rule="guard.default-deny") == 30


def test_scraping_needs_the_token_and_speaks_openmetrics_when_asked(
        console_guard: RunningGuard) -> None:
    with httpx.Client(base_url=console_guard.admin_url) as c:
        assert c.get("/metrics").status_code == 401
    with admin(console_guard) as c:
        r = c.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert r.headers["content-type"].startswith("application/openmetrics-text")
        assert r.text.rstrip().endswith("# EOF")
        assert "process_resident_memory_bytes" in c.get("/metrics").text


def test_one_histogram_observation_lands_in_one_bucket() -> None:
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    assert h.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)] and h.count == 4


def test_rule_labels_past_the_cap_count_as_other() -> None:
    m = Metrics(process=False)
    m._rules = {f"r{i}" for i in range(5000)}
    m.observe_event({"kind": "flow", "action": "block", "rule": "one-too-many"})
    m.observe_event({"kind": "flow", "action": "weird", "rule": "r1"})
    assert m.requests == {("block", "other"): 1, ("other", "r1"): 1}
