"""Every worker's counters in one directory (guard.sharedmetrics), read as one gateway:
real files in tmp_path, real Metrics objects, prometheus-client's own parsers."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families

from guard import sharedmetrics
from guard.metrics import DECISION_BUCKETS, Gauges, Metrics
from guard.sharedmetrics import SharedCounts


def _flow(action: str, rule: str, ms: float = 3.0) -> dict[str, object]:
    return {"kind": "flow", "action": action, "rule": rule, "duration_ms": ms}


def _worker(d: Path, index: int, pid: int, *, writable: bool = True) -> Metrics:
    m = Metrics(Gauges(rules=lambda: 7, audit_writable=lambda: writable,
                       reloads=lambda: (1, 0)),
                process=False, shared=SharedCounts(d, index, pid=pid))
    m.share_gauges()
    return m


def _scrape(m: Metrics, accept: str = "") -> dict[str, list[tuple[dict[str, str], float]]]:
    body, _ = m.exposition(accept)
    parse = om_parse if accept else text_string_to_metric_families
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in parse(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for got, v in samples if all(got.get(k) == x for k, x in labels.items()))


def test_worker_0_scrapes_the_sum_of_every_workers_counters_and_histograms(
        tmp_path: Path) -> None:
    sharedmetrics.prepare(tmp_path)
    zero, one = _worker(tmp_path, 0, 100), _worker(tmp_path, 1, 101)
    for _ in range(3):
        zero.observe_event(_flow("simulate", "stripe.customers.create"))
    for _ in range(5):
        one.observe_event(_flow("simulate", "stripe.customers.create", 40.0))
    one.observe_event(_flow("block", "guard.default-deny"))
    one.observe_decision("simulate", 0.001)
    one.observe_audit_write(0.0001, ok=False)
    one.observe_event({"kind": "websocket"})
    got = _scrape(zero)
    requests = got["guard_requests_total"]
    assert _value(requests, action="simulate", rule="stripe.customers.create") == 8
    assert _value(requests, action="block", rule="guard.default-deny") == 1
    assert _value(got["guard_response_seconds_count"], action="simulate") == 8
    assert _value(got["guard_response_seconds_bucket"], action="simulate", le="0.005") == 3
    assert _value(got["guard_response_seconds_bucket"], action="simulate", le="+Inf") == 8
    assert abs(_value(got["guard_response_seconds_sum"], action="simulate") - 0.209) < 1e-9
    assert _value(got["guard_decision_seconds_count"], action="simulate") == 1
    assert _value(got["guard_audit_write_failures_total"]) == 1
    assert _value(got["guard_websocket_messages_total"]) == 1
    assert _value(got["guard_reloads_total"], result="ok") == 2  # one each
    # gauges that differ by worker: one series each
    assert sorted(lab["worker"] for lab, _ in got["guard_audit_writable"]) == ["0", "1"]
    assert got["guard_start_time_seconds"][0][1] == sharedmetrics.started(tmp_path)
    # every series of a worker exists before its first observation, "other" aside
    assert {lab["action"] for lab, _ in got["guard_decision_seconds_count"]} == {
        "simulate", "block", "allow", "error"}
    assert len([1 for lab, _ in got["guard_decision_seconds_bucket"]
                if lab["action"] == "allow"]) == len(DECISION_BUCKETS) + 1


def test_openmetrics_of_the_gateway_parses(tmp_path: Path) -> None:
    sharedmetrics.prepare(tmp_path)
    zero, one = _worker(tmp_path, 0, 100), _worker(tmp_path, 1, 101)
    one.observe_event(_flow("allow", "github.read"))
    one.observe_event(_flow("weird", "x"))  # counted as "other": its histogram appears
    got = _scrape(zero, "application/openmetrics-text")
    assert _value(got["guard_requests_total"], action="allow") == 1
    assert _value(got["guard_response_seconds_count"], action="other") == 1


def test_a_dead_worker_keeps_its_counts_and_loses_its_gauges_and_its_successor_adds(
        tmp_path: Path) -> None:
    sharedmetrics.prepare(tmp_path)
    zero, one = _worker(tmp_path, 0, 100), _worker(tmp_path, 1, 101, writable=False)
    one.observe_event(_flow("simulate", "r"))
    one.observe_event(_flow("simulate", "r"))
    assert _value(_scrape(zero)["guard_audit_writable"], worker="1") == 0
    sharedmetrics.forget(tmp_path, 1)  # the supervisor saw it die
    got = _scrape(zero)
    assert _value(got["guard_requests_total"], rule="r") == 2  # no reset
    assert [lab["worker"] for lab, _ in got["guard_audit_writable"]] == ["0"]
    again = _worker(tmp_path, 1, 102)  # started in its place: a new process, from zero
    again.observe_event(_flow("simulate", "r"))
    got = _scrape(zero)
    assert _value(got["guard_requests_total"], rule="r") == 3  # 2 + 1, never back, no double
    assert _value(got["guard_audit_writable"], worker="1") == 1


def test_a_new_gateway_starts_from_zero(tmp_path: Path) -> None:
    sharedmetrics.prepare(tmp_path)
    _worker(tmp_path, 0, 100).observe_event(_flow("simulate", "r"))
    sharedmetrics.prepare(tmp_path)  # what each start of the supervisor does
    assert "guard_requests_total" not in _scrape(_worker(tmp_path, 0, 200))


def test_many_rule_labels_grow_the_files_and_stay_summed(tmp_path: Path) -> None:
    # a file starts at 64 KiB and doubles: a few thousand series cross that more than once
    sharedmetrics.prepare(tmp_path)
    zero, one = _worker(tmp_path, 0, 100), _worker(tmp_path, 1, 101)
    for i in range(3000):
        one.observe_event(_flow("block", f"pack.rule-{i:05d}-{'x' * 40}"))
    got = _scrape(zero)
    assert len(got["guard_requests_total"]) == 3000
    assert _value(got["guard_requests_total"]) == 3000


def test_each_workers_process_figures_are_its_own_and_cpu_seconds_add_up(
        tmp_path: Path) -> None:
    sharedmetrics.prepare(tmp_path)
    zero = Metrics(Gauges(), shared=SharedCounts(tmp_path, 0, pid=100))
    _worker(tmp_path, 1, 101)  # the same process here: its figures twice
    got = _scrape(zero)
    memory = {lab["worker"]: v for lab, v in got["process_resident_memory_bytes"]}
    assert set(memory) == {"0", "1"} and all(v > 0 for v in memory.values())
    assert "worker" not in got["process_cpu_seconds_total"][0][0]  # one sum
    assert "python_gc_objects_collected_total" not in got  # whose? left out in a gateway
    assert "python_info" in got


def test_the_gateways_readiness_names_another_worker_that_cannot_write_its_audit_log(
        tmp_path: Path) -> None:
    from guard.admin.health import workers_check

    sharedmetrics.prepare(tmp_path)
    _worker(tmp_path, 0, 100, writable=False)  # worker 0's own: its audit check says so
    _worker(tmp_path, 1, 101, writable=False)
    _worker(tmp_path, 2, 102)
    check = workers_check(tmp_path, 0)
    assert check() == "worker 1 cannot write its audit log"
    sharedmetrics.forget(tmp_path, 1)  # dead, being started again: takes no connections
    assert check() is None
