"""Hot reload through a real proxy: good changes are taken for the next request, bad ones
are refused loudly while the last good rules keep answering, and SIGHUP reloads."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from authoring_helpers import write

from guard.errors import TemplateError
from guard.packs import load_packs
from guard.request import Request
from guard.synth.simulator import Simulator
from guard.world import MemoryStore

ROOT = Path(__file__).resolve().parents[2]

PING = """
    pack: ping
    hosts: [api.ping.test]
    rules:
      - id: ping.pong
        match: {method: GET, path: /ping}
        action: simulate
        respond: {body: {pong: PONG}}
"""


def ping_rules(directory: Path, pong: object = 1) -> Path:
    return write(directory / "ping.yaml", PING.replace("PONG", json.dumps(pong)))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait for something the proxy does on its own schedule (a generous limit, not a
    timing assertion: it only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def session(proxies: dict[str, str], ca: str) -> requests.Session:
    s = requests.Session()
    s.trust_env, s.proxies, s.verify = False, proxies, ca
    return s


def audit_events(path: Path, rule: str = "guard.reload") -> list[dict[str, object]]:
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e["rule"] == rule]


def test_a_valid_change_takes_effect_for_the_next_request(guard_proxy, tmp_path):
    rules = tmp_path / "rules"
    ping_rules(rules, 1)
    g = guard_proxy(rules, builtin=False, reload_interval=0.05)
    s = session(g.proxies, g.ca)
    assert s.get("https://api.ping.test/ping").json() == {"pong": 1}
    ping_rules(rules, "two, longer")
    wait_until(lambda: g.master.reloader.reloads == 1, "the reload")
    r = s.get("https://api.ping.test/ping")
    assert r.json() == {"pong": "two, longer"} and r.headers["X-Guard-Rule"] == "ping.pong"
    (event,) = audit_events(tmp_path / "audit.jsonl")
    assert event["action"] == "reload" and "ping.yaml" in event["reason"]


def test_a_new_rule_file_in_a_watched_directory_is_picked_up(guard_proxy, tmp_path):
    rules = tmp_path / "rules"
    ping_rules(rules)
    g = guard_proxy(rules, builtin=False, reload_interval=0.05)
    s = session(g.proxies, g.ca)
    assert s.get("https://api.echo.test/x").status_code == 403
    write(rules / "echo.yaml", """
        pack: echo
        hosts: [api.echo.test]
        rules:
          - {id: echo.all, action: simulate, respond: {body: {path: "{{ request.path }}"}}}
    """)
    wait_until(lambda: g.master.reloader.reloads == 1, "the reload")
    assert s.get("https://api.echo.test/x").json() == {"path": "/x"}


def test_an_invalid_change_is_refused_and_the_old_rules_keep_answering(guard_proxy, tmp_path,
                                                                       caplog):
    rules = tmp_path / "rules"
    path = ping_rules(rules, 1)
    g = guard_proxy(rules, builtin=False, reload_interval=0.05)
    s = session(g.proxies, g.ca)
    caplog.set_level(logging.ERROR, logger="guard")
    path.write_text(path.read_text().replace("action: simulate", "action: simulatte")
                    .replace("respond: {body: {pong: 1}}", "respond: {template: nope.yaml}"))
    wait_until(lambda: g.master.reloader.failures == 1, "the refused reload")
    r = s.get("https://api.ping.test/ping")
    assert r.status_code == 200 and r.json() == {"pong": 1}

    expected = [f"{path}:6:13: rules.0.action: unknown action 'simulatte': use simulate, "
                "block or allow",  # and the rule's other problem, in the same report
                f"{path}:7:25: template 'nope.yaml' not found (looked for {rules}/nope.yaml, "
                f"{rules}/templates/nope.yaml)"]
    assert [str(p) for p in g.master.reloader.problems] == expected
    (event,) = audit_events(tmp_path / "audit.jsonl")
    assert event["action"] == "reload-failed" and event["problems"] == expected
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RELOAD FAILED" in logged and "keeping the last good rules" in logged
    assert expected[0] in logged

    # fixed: the next poll takes it
    ping_rules(rules, 3)
    wait_until(lambda: g.master.reloader.reloads == 1, "the reload after the fix")
    assert s.get("https://api.ping.test/ping").json() == {"pong": 3}


def test_creating_the_template_a_refused_reload_missed_is_noticed(guard_proxy, tmp_path):
    rules = tmp_path / "rules"
    path = ping_rules(rules, 1)
    g = guard_proxy(path, builtin=False, reload_interval=0.05)
    path.write_text(path.read_text().replace("respond: {body: {pong: 1}}",
                                             "respond: {template: ping/pong.yaml}"))
    wait_until(lambda: g.master.reloader.failures == 1, "the refused reload")
    write(rules / "templates" / "ping" / "pong.yaml", "pong: from a template\n")
    wait_until(lambda: g.master.reloader.reloads == 1, "the reload")
    s = session(g.proxies, g.ca)
    assert s.get("https://api.ping.test/ping").json() == {"pong": "from a template"}
    # and an edit of the template alone reloads too
    write(rules / "templates" / "ping" / "pong.yaml", "pong: edited template\n")
    wait_until(lambda: g.master.reloader.reloads == 2, "the template reload")
    assert s.get("https://api.ping.test/ping").json() == {"pong": "edited template"}


def test_a_reload_never_takes_half_a_rule_set(guard_proxy, tmp_path):
    rules = tmp_path / "rules"
    ping_rules(rules, 1)
    other = write(rules / "other.yaml", """
        pack: other
        hosts: [api.other.test]
        rules:
          - {id: other.one, action: simulate, respond: {body: {n: 1}}}
    """)
    g = guard_proxy(rules, builtin=False, reload=False)
    ping_rules(rules, 2)  # valid on its own ...
    other.write_text(other.read_text().replace("n: 1", "n: '{{ 1 + }}'"))  # ... this is not
    assert g.reload() is False
    s = session(g.proxies, g.ca)
    assert s.get("https://api.ping.test/ping").json() == {"pong": 1}
    assert s.get("https://api.other.test/").json() == {"n": 1}


def test_a_reload_that_would_leave_no_rules_is_refused(guard_proxy, tmp_path):
    rules = tmp_path / "rules"
    path = ping_rules(rules, 1)
    g = guard_proxy(rules, builtin=False, reload=False)
    path.unlink()
    assert g.reload() is False
    assert "no rules at all" in str(g.master.reloader.problems[0])
    assert session(g.proxies, g.ca).get("https://api.ping.test/ping").json() == {"pong": 1}


def test_a_decided_request_is_answered_by_the_rules_that_decided_it(tmp_path):
    """What makes in-flight requests safe: a request keeps the packs (engine and responses,
    templates included) it started with, so swapping them mid-request changes nothing for
    that request; and a decision of one rule set has no response in another."""
    write(tmp_path / "templates" / "ping" / "pong.yaml", "pong: old\n")
    path = write(tmp_path / "ping.yaml", PING.replace("{body: {pong: PONG}}",
                                                      "{template: ping/pong.yaml}"))
    sim = Simulator(MemoryStore(seed=1))
    req = Request.build("GET", "https://api.ping.test/ping")
    started = load_packs([path], builtin=False)
    decided = started.engine.decide(req)
    write(tmp_path / "templates" / "ping" / "pong.yaml", "pong: new\n")
    reloaded = load_packs([path], builtin=False)
    assert json.loads(sim.respond(decided, req, started.responders).response.body) == \
        {"pong": "old"}
    assert json.loads(sim.respond(reloaded.engine.decide(req), req, reloaded.responders)
                      .response.body) == {"pong": "new"}
    with pytest.raises(TemplateError):  # never the old decision with the new responses
        sim.respond(decided, req, reloaded.responders)


def test_no_reload_turns_watching_off(guard_proxy, tmp_path):
    g = guard_proxy(ping_rules(tmp_path), builtin=False, reload=False)
    assert not g.master.reloader.watching
    h = guard_proxy(ping_rules(tmp_path), builtin=False)
    assert h.master.reloader.watching


def test_sighup_reloads_a_guard_started_from_the_command_line(tmp_path, confdir):
    rules = tmp_path / "rules"
    ping_rules(rules, 1)
    audit = tmp_path / "audit.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "run", "--no-builtin", "--rules", str(rules),
         "--no-reload", "--listen-port", "0", "--confdir", str(confdir), "--audit", str(audit)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line + proc.stdout.read()
        port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        url = f"http://127.0.0.1:{port}"
        s = session({"http": url, "https": url}, str(confdir / "mitmproxy-ca-cert.pem"))
        assert s.get("https://api.ping.test/ping").json() == {"pong": 1}

        ping_rules(rules, 2)  # not watched (--no-reload): only the signal reloads
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(audit_events(audit)) == 1, "the SIGHUP reload")
        (event,) = audit_events(audit)
        assert event["action"] == "reload" and "SIGHUP" in event["reason"]
        assert s.get("https://api.ping.test/ping").json() == {"pong": 2}
    finally:
        proc.terminate()
        proc.wait(30)
