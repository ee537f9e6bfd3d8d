"""Coverage: rules no case exercised, and what a recorded audit log never reached."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from authoring_helpers import ORDERS_PACK, guard, write

from guard.authoring.coverage import audit_coverage


def test_coverage_lists_the_rules_no_case_exercised(tmp_path, capsys):
    path = write(tmp_path / "orders.yaml", ORDERS_PACK + """
    tests:
      - name: an order is created
        request: {method: POST, url: "https://api.orders.test/v1/orders", json: {amount: 1}}
        expect: {rule: orders.create}
      - name: admin is blocked
        request: {url: "https://api.orders.test/admin"}
        expect: {rule: orders.admin}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin", "--coverage")
    assert code == 0, out
    assert "coverage: 2 of 4 rules exercised by cases" in out
    assert "  orders: 2 not exercised" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("    orders.")]
    assert [(words[0], words[1]) for words in lines] == [
        ("orders.get", f"{path}:15:5"), ("orders.list", f"{path}:23:5")]


def test_a_failing_case_still_counts_as_exercising_the_rule_it_reached(tmp_path, capsys):
    path = write(tmp_path / "orders.yaml", ORDERS_PACK + """
    tests:
      - name: listing answers the wrong count
        request: {url: "https://api.orders.test/v1/orders"}
        expect: {body: {count: 99}}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin", "--coverage")
    assert code == 1
    uncovered = out[out.index("coverage:"):]
    assert "coverage: 1 of 4 rules exercised" in uncovered and "orders.list " not in uncovered


def test_audit_coverage_from_a_log_recorded_by_a_real_proxy(guard_proxy, tmp_path, capsys):
    rules = write(tmp_path / "orders.yaml", ORDERS_PACK)
    audit = tmp_path / "audit.jsonl"
    g = guard_proxy(rules, builtin=False, audit=audit)
    s = requests.Session()
    s.trust_env, s.proxies, s.verify = False, g.proxies, g.ca
    assert s.post("https://api.orders.test/v1/orders", json={"amount": 3}).status_code == 201
    assert s.get("https://api.orders.test/v1/orders").status_code == 200
    for path in ("/v2/orders", "/v2/orders", "/v2/refunds", "/v2/a", "/v2/b"):
        assert s.get(f"https://api.orders.test{path}").status_code == 403
    assert s.post("https://hooks.other.test/send").status_code == 403
    g.stop()

    code, out, _ = guard(capsys, "coverage", str(audit), "--rules", str(rules), "--no-builtin")
    assert code == 0, out
    assert "audit log: 8 events; 2 of 4 rules fired" in out
    assert "  orders: 2 never fired" in out
    assert "orders.get " in out and "orders.admin " in out and "orders.create " not in out
    by_host = {line.split()[0]: line.split(None, 2)[1:] for line in out.splitlines()
               if line.startswith("  ") and ".test" in line.split()[0]}
    assert by_host["api.orders.test"] == ["5", "GET /v2/orders, GET /v2/refunds, GET /v2/a"]
    assert by_host["hooks.other.test"] == ["1", "POST /send"]
    # api.orders.test (5 requests) is listed before hooks.other.test (1)
    assert out.index("api.orders.test  ") < out.index("hooks.other.test  ")

    code, out, _ = guard(capsys, "coverage", str(audit), "-r", str(rules), "--no-builtin",
                         "--json")
    data = json.loads(out)
    assert data["fired"] == {"guard.default-deny": 6, "orders.create": 1, "orders.list": 1}
    assert [r["rule"] for r in data["never_fired"]["orders"]] == ["orders.get", "orders.admin"]


def test_audit_coverage_skips_guards_own_events_and_damaged_lines(builtin_rules):
    ruleset = builtin_rules
    lines = [
        '{"rule": "guard.reload", "action": "reload", "host": ""}',
        "not json at all",
        '{"rule": "stripe.live-key", "host": "api.stripe.com", "method": "GET",'
        ' "url": "https://api.stripe.com/v1/charges"}',
        "",
        '["a list"]',
    ]
    cov = audit_coverage(lines, ruleset)
    assert cov.events == 2 and cov.damaged == [2, 5] and cov.default == []
    never = {r.id for rules in cov.never.values() for r in rules}
    assert "stripe.live-key" not in never and "stripe.customers.create" in never


def test_coverage_of_a_missing_log_is_an_error(tmp_path: Path, capsys):
    code, _, err = guard(capsys, "coverage", str(tmp_path / "nope.jsonl"))
    assert code == 1 and "cannot read audit log" in err
