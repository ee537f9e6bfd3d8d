"""guard check and guard explain: exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys

from guard.cli import main


def test_check_accepts_the_builtin_packs(capsys):
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("ok:")


def test_check_reports_problems_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pack: x\nhosts: [a.test]\nrules:\n  - id: x.a\n    action: nope\n")
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:5:13: rules.0.action: unknown action 'nope'" in err


def test_explain_names_the_rule_and_the_near_misses(capsys):
    assert main(["explain", "POST", "https://api.stripe.com/v1/customers",
                 "-H", "Authorization: Bearer sk_test_1", "-d", "email=a@b.c"]) == 0
    out = capsys.readouterr().out
    assert "decided by: stripe.customers.create" in out and "action:     simulate" in out
    assert "stripe.live-key: credential is present but does not match" in out
    assert "sk_test_1" not in out


def test_explain_json_for_an_unknown_host(capsys):
    assert main(["explain", "GET", "https://nowhere.test/", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["rule"], data["action"]) == ("guard.default-deny", "block")


def test_the_console_script_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "guard", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("guard ")
