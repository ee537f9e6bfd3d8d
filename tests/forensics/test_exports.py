"""guard audit export: HAR 1.2, a mitmproxy flow file mitmproxy itself reads, and an offline
HTML report that renders in headless Chromium with its figures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from guard.audit import reader
from guard.cli import main


def export(log: Path, *args: str | Path) -> None:
    assert main(["audit", "export", str(log), *map(str, args)]) == 0


def test_har_has_the_required_har_1_2_fields(recorded_log, tmp_path):
    out = tmp_path / "session.har"
    export(recorded_log, "--har", out)
    har = json.loads(out.read_text())["log"]
    assert har["version"] == "1.2" and har["creator"]["name"] == "guard"
    assert len(har["entries"]) == 7
    for e in har["entries"]:
        datetime.fromisoformat(e["startedDateTime"].replace("Z", "+00:00"))
        assert isinstance(e["time"], (int, float)) and e["cache"] == {}
        assert all(isinstance(e["timings"][k], (int, float)) for k in ("send", "wait", "receive"))
        req, resp = e["request"], e["response"]
        for key, kind in (("method", str), ("url", str), ("httpVersion", str), ("cookies", list),
                          ("headers", list), ("queryString", list), ("headersSize", int),
                          ("bodySize", int)):
            assert isinstance(req[key], kind), key
        for key, kind in (("status", int), ("statusText", str), ("httpVersion", str),
                          ("cookies", list), ("headers", list), ("content", dict),
                          ("redirectURL", str), ("headersSize", int), ("bodySize", int)):
            assert isinstance(resp[key], kind), key
        assert isinstance(resp["content"]["size"], int)
        assert isinstance(resp["content"]["mimeType"], str)
        assert all(set(h) == {"name", "value"} for h in req["headers"] + resp["headers"])
        if "postData" in req:
            assert isinstance(req["postData"]["mimeType"], str) and "text" in req["postData"]
    blocked = har["entries"][2]
    assert (blocked["response"]["status"], blocked["_guard"]["rule"]) == (403,
                                                                         "audit-test.blocked")
    stripe = har["entries"][0]["request"]
    assert {"name": "email", "value": "jenny@example.com"} in stripe["postData"]["params"]


def test_the_flow_file_loads_with_mitmproxys_own_reader(recorded_log, tmp_path):
    from mitmproxy import io

    out = tmp_path / "session.flows"
    export(recorded_log, "--mitm", out)
    with open(out, "rb") as f:
        flows = list(io.FlowReader(f).stream())
    events = list(reader.events([recorded_log]))  # the allowed flow's two events joined
    assert len(events) == 7
    assert [f.request.url for f in flows] == [e["url"] for e in events]
    assert [f.response.status_code for f in flows] == [e["status"] for e in events]
    assert flows[2].comment == ("guard seq 3: block by audit-test.blocked: "
                                "exfiltration endpoint")
    assert flows[1].request.json() == {"to": "boss@corp.test", "subject": "Q3 numbers",
                                       "text": "see attached"}


def test_mitmdump_reads_the_flow_file(recorded_log, tmp_path):
    out = tmp_path / "session.flows"
    export(recorded_log, "--mitm", out)
    mitmdump = Path(sys.executable).with_name("mitmdump")
    run = subprocess.run([str(mitmdump), "-n", "-r", str(out), "--set", "flow_detail=1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "POST https://evil.test/upload" in run.stdout and "<< 403" in run.stdout


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("GUARD_REQUIRE_NETNS"):
        pytest.fail("chromium is required here (apt-get install chromium)")
    pytest.skip("chromium is not installed")


def test_the_html_report_renders_its_figures_in_headless_chromium(recorded_log, tmp_path):
    browser = chromium()
    out = tmp_path / "report.html"
    export(recorded_log, "--html", out)
    html = out.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing external
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", out.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    figures = dict(re.findall(r'id="fig-([\w-]+)" data-value="(\d+)"', dom.stdout))
    assert figures == {"total": "7", "simulate": "3", "block": "3", "allow": "1",
                       "real-world": "1", "error": "0", "sandboxes": "2", "outbox": "1"}
    assert "Integrity: the hash chain is intact (8 events" in dom.stdout
    assert dom.stdout.count("<svg") == 4 and dom.stdout.count("<rect") >= 10
    assert "Q3 numbers" in dom.stdout and "boss@corp.test" in dom.stdout
    assert dom.stdout.count("https://evil.test/upload") == 2
    shot = tmp_path / "report.png"
    run = subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1280,2000",
                          out.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_says_so_when_the_chain_is_broken(log_copy, tmp_path):
    lines = log_copy.read_text().splitlines(keepends=True)
    del lines[2]
    log_copy.write_text("".join(lines))
    out = tmp_path / "report.html"
    export(log_copy, "--html", out)
    assert "Integrity: BROKEN at seq 3: missing" in out.read_text()
