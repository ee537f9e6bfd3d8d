"""guard test: cases pass and fail for the right reasons, and say why."""

from __future__ import annotations

from pathlib import Path

from authoring_helpers import ORDERS_PACK, guard, write

CASES = """
    tests:
      - name: an order is created
        request: {method: POST, url: "https://api.orders.test/v1/orders",
                  json: {amount: 1200, plan: pro}}
        expect: {action: simulate, rule: orders.create, status: 201,
                 body: {object: order, amount: 1200, id: {prefix: ord_}, "$.plan": pro}}
"""


def pack(tmp_path: Path, tests: str) -> Path:
    return write(tmp_path / "orders.yaml", ORDERS_PACK + tests)


def test_passing_cases_print_ok_and_the_summary(tmp_path, capsys):
    path = pack(tmp_path, CASES)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 0, out
    assert "ok    an order is created" in out
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_cases_of_a_pack_share_one_world_in_order(tmp_path, capsys):
    path = pack(tmp_path, CASES + """
      - name: the order is listed afterwards
        request: {url: "https://api.orders.test/v1/orders"}
        expect: {rule: orders.list, body: {count: 1}}
      - name: an order that was never created is missing
        request: {url: "https://api.orders.test/v1/orders/ord_nope"}
        expect: {rule: orders.get, status: 404, body: {error: no such order}}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 0, out
    assert out.splitlines()[-1] == "3 passed, 0 failed"


def test_a_simulated_field_that_differs_fails_with_expected_and_actual(tmp_path, capsys):
    path = pack(tmp_path, CASES + """
      - name: the plan is echoed
        request: {method: POST, url: "https://api.orders.test/v1/orders",
                  json: {amount: 5, plan: basic}}
        expect: {status: 201, body: {plan: pro, amount: "5"}}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 1
    assert "FAIL  the plan is echoed" in out
    assert 'body plan: expected "pro", got "basic"' in out
    # exact values keep JSON types apart: the string "5" is not the number 5
    assert 'body amount: expected "5", got 5' in out
    assert f"at {path}:" in out and "decided by: orders.create (simulate)" in out
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_a_wrong_rule_shows_the_near_misses(tmp_path, capsys):
    path = pack(tmp_path, """
    tests:
      - name: deleting an order is simulated
        request: {method: DELETE, url: "https://api.orders.test/v1/orders/ord_1"}
        expect: {action: simulate, rule: orders.get}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 1
    assert "rule: expected orders.get, got guard.default-deny" in out
    assert "action: expected simulate, got block" in out
    assert "orders.get: method is DELETE, wanted GET" in out


def test_matchers_in_expectations_work_like_rule_matchers(tmp_path, capsys):
    path = pack(tmp_path, """
    tests:
      - name: admin is blocked with a JSON error
        request: {url: "https://api.orders.test/admin/users"}
        expect:
          action: block
          status: 403
          headers: {content-type: {prefix: application/json}, x-missing: {present: false}}
          body:
            error.rule: orders.admin
            $.error.reason: {regex: "^no admin"}
            error.nothing: {present: false}
            $: {not: {present: false}}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 0, out


def test_an_allowed_request_has_no_response_to_check(tmp_path, capsys):
    path = write(tmp_path / "docs.yaml", """
        pack: docs
        hosts: [docs.orders.test]
        rules:
          - {id: docs.read, match: {method: GET}, action: allow}
        tests:
          - name: docs are allowed
            request: {url: "https://docs.orders.test/index.html"}
            expect: {action: allow, rule: docs.read}
          - name: a test that wants a status from an allowed request fails
            request: {url: "https://docs.orders.test/index.html"}
            expect: {status: 200}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 1
    assert "response: expected one, got none (action allow" in out
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_a_template_that_fails_at_request_time_is_an_error_outcome(tmp_path, capsys):
    path = write(tmp_path / "bad.yaml", """
        pack: bad
        hosts: [bad.test]
        rules:
          - id: bad.divide
            action: simulate
            respond: {body: {x: "{{ 1 // 0 }}"}}
        tests:
          - name: the failure is answered like the proxy does
            request: {url: "https://bad.test/"}
            expect: {action: error, rule: bad.divide, status: 500,
                     body: {error.type: guard_error, error.message: {contains: ZeroDivision}}}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 0, out


def test_form_cases_are_sent_with_stripe_style_nesting(tmp_path, capsys):
    path = write(tmp_path / "forms.yaml", """
        pack: forms
        hosts: [forms.test]
        rules:
          - id: forms.pro
            match: {method: POST, form: {metadata.plan: pro, "items.1.price": p2}}
            action: simulate
            respond: {body: {plan: "{{ request.form.metadata.plan }}"}}
        tests:
          - name: nested form fields reach the matcher and the template
            request:
              method: POST
              url: "https://forms.test/v1/things"
              form: {metadata: {plan: pro}, items: [{price: p1}, {price: p2}]}
            expect: {rule: forms.pro, body: {plan: pro}}
    """)
    code, out, _ = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 0, out


def test_case_files_next_to_the_rules_run_too(tmp_path, capsys):
    rules = pack(tmp_path, "")
    write(tmp_path / "orders.cases.yaml", """
        # a bare list of cases
        - name: listing works
          request: {url: "https://api.orders.test/v1/orders"}
          expect: {rule: orders.list, body: {count: 0}}
    """)
    write(tmp_path / "more.cases.yaml", """
        description: cases may target any loaded pack, built-in ones too
        cases:
          - name: a stripe customer from a case file
            request: {method: POST, url: "https://api.stripe.com/v1/customers",
                      headers: {Authorization: "Bearer sk_test_1"}, form: {email: a@b.c}}
            expect: {rule: stripe.customers.create, body: {email: a@b.c}}
    """)
    code, out, _ = guard(capsys, "test", str(rules))  # the sibling orders.cases.yaml only
    assert code == 0, out
    assert "listing works" in out and "stripe customer" not in out
    code, out, _ = guard(capsys, "test", str(tmp_path))  # the whole directory
    assert code == 0, out
    assert "a stripe customer from a case file" in out
    assert out.splitlines()[-1] == "2 passed, 0 failed"


def test_case_file_problems_are_reported_as_path_line_column(tmp_path, capsys):
    pack(tmp_path, "")
    bad = write(tmp_path / "bad.cases.yaml", """
        cases:
          - name: one
            request: {url: "https://api.orders.test/v1/orders", colour: red}
            expect: {status: 200}
          - name: two
            request: {url: "https://api.orders.test/v1/orders"}
            expect: {body: {"$.a[": 1}}
          - name: three
            request: {url: "https://api.orders.test/v1/orders"}
            expect: {}
    """)
    broken = write(tmp_path / "broken.cases.yaml", "- name: [unclosed\n")
    code, out, err = guard(capsys, "test", str(tmp_path), "--no-builtin")
    assert code == 1 and "passed" not in out
    assert f"{bad}:3:57: cases.0.request.colour: unknown field 'colour'" in err
    assert f"{bad}:7:20: cases.1.expect.body: bad path '$.a['" in err
    assert f"{bad}:10:13: cases.2.expect: expect needs at least one of" in err
    assert f"{broken}:2:1: invalid YAML" in err


def test_a_broken_case_inside_a_pack_fails_guard_check_too(tmp_path, capsys):
    path = pack(tmp_path, """
    tests:
      - name: missing its request
        expect: {status: 200}
    """)
    code, _, err = guard(capsys, "check", str(path), "--no-builtin")
    assert code == 1
    assert f"{path}:34:5: tests.0.request: Field required" in err


def test_no_cases_at_all_is_a_failure_not_a_silent_pass(tmp_path, capsys):
    path = pack(tmp_path, "")
    code, _, err = guard(capsys, "test", str(path), "--no-builtin")
    assert code == 1 and "no test cases found" in err
