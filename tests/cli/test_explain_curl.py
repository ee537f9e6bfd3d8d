"""guard explain -d decides what the same curl command is decided: the real curl sends the
request through a real guard, explain builds it from the same flags, and both name the same
rule, body and content type."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from guard.cli import main

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")

RULES = """\
pack: curltest
hosts: [echo.test]
rules:
  - id: curltest.json
    match: {method: POST, path: /in, json: {email: {present: true}}}
    action: simulate
    respond: {status: 200, body: {seen: json}}
  - id: curltest.form
    match: {method: POST, path: /in, form: {email: {present: true}}}
    action: simulate
    respond: {status: 200, body: {seen: form}}
  - id: curltest.multi
    match: {method: POST, path: /in, form: {a: "1", b: "x y"}}
    action: simulate
    respond: {status: 200, body: {seen: multi}}
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    f = tmp_path / "curltest.yaml"
    f.write_text(RULES)
    return f


def explained(capsys, rules: Path, *flags: str) -> dict:
    assert main(["explain", "POST", "http://echo.test/in", "--no-builtin", "--rules",
                 str(rules), "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("flags", [
    ("-d", '{"email": "a@b.c"}'),                       # curl sends a form, not JSON
    ("-d", "email=a@b.c"),
    ("-d", '{"email": "a@b.c"}', "-H", "Content-Type: application/json"),
    ("--json-body", '{"email": "a@b.c"}'),               # curl --json
    ("-d", "a=1", "--data-urlencode", "b=x y"),          # joined with &, encoded
    ("-d", "@BODY"),                                      # newlines of the file dropped
    ("--data-binary", "@BODY"),                           # kept
])
def test_explain_decides_like_the_same_curl_request(guard_proxy, rules, tmp_path, capsys,
                                                     flags):
    body = tmp_path / "body.txt"
    body.write_text("a=1&\nb=x+y\n")
    flags = tuple(f.replace("@BODY", f"@{body}") for f in flags)
    curl_flags = tuple("--json" if f == "--json-body" else f for f in flags)
    g = guard_proxy(rules, builtin=False)
    subprocess.run(["curl", "-s", "-o", "/dev/null", "--proxy", g.proxies["http"],
                    "http://echo.test/in", *curl_flags], check=True, timeout=60)
    [event] = [json.loads(x) for x in Path(g.cfg.audit).read_text().splitlines()
               if json.loads(x).get("kind") == "flow"]
    sent = dict((k.lower(), v) for k, v in event["request"]["headers"])
    ex = explained(capsys, rules, *flags)
    assert ex["rule"] == event["rule"]
    assert ex["body"]["size"] == event["request"]["body"]["size"]
    assert ex["body"]["content_type"] == sent["content-type"]


def test_explain_says_which_content_type_it_used(rules, capsys):
    assert main(["explain", "POST", "http://echo.test/in", "--no-builtin", "--rules",
                 str(rules), "-d", '{"email": "x"}']) == 0
    out = capsys.readouterr().out
    assert ("body:       14 bytes, Content-Type application/x-www-form-urlencoded "
            "(curl's default for -d)") in out
    assert "decided by: guard.default-deny" in out
