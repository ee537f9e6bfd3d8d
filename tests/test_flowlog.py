"""The line guard prints per request (guard/flowlog.py): the fields people scan for, and
nothing an agent sent can act on the terminal."""

from __future__ import annotations

import io
import json
from datetime import UTC

import pytest

from guard.flowlog import FlowLog, color_wanted, json_line, line, shows

EVENT = {"kind": "flow", "seq": 7, "time": "2026-01-02T03:04:05.678Z", "sandbox": "agent-7",
         "client": "10.0.0.7", "method": "POST", "url": "https://api.stripe.com/v1/customers",
         "host": "api.stripe.com", "action": "simulate", "rule": "stripe.customers.create",
         "status": 200, "duration_ms": 3.14, "upstream": False,
         "request": {"headers": [["authorization", "[REDACTED:1]"]], "body": None}}


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_line_has_time_sandbox_method_url_action_rule_status_and_duration():
    assert line(EVENT, tz=UTC) == ("03:04:05.678 agent-7 POST https://api.stripe.com/v1/customers"
                                   " simulate stripe.customers.create 200 3.1ms")


@pytest.mark.parametrize("field", ["sandbox", "method", "url", "rule"])
def test_escape_sequences_and_bidi_overrides_from_an_agent_print_as_visible_escapes(field):
    hostile = {**EVENT, field: "a\x1b[2K\x1b[1Ab\u202ec\r\n\x07\x9b\udcff"}
    for text in (line(hostile), line(hostile, color=True), json_line(hostile)):
        assert not any(c in text for c in "\r\n\x07\x9b\u202e\udcff")
        assert text.count("\x1b") == (text.count("\x1b[0m") * 2 if "\x1b[0m" in text else 0)
    assert "a\\x1b[2K\\x1b[1Ab\\u202ec\\x0d\\x0a\\x07\\x9b\\xff" in line(hostile)


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert color_wanted(Tty()) and not color_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not color_wanted(Tty())
    out = Tty()
    FlowLog(out)(EVENT)
    assert "\x1b[" not in out.getvalue()
    monkeypatch.delenv("NO_COLOR")
    out = Tty()
    FlowLog(out)({**EVENT, "action": "block", "status": 403})
    assert "\x1b[33mblock\x1b[0m" in out.getvalue() and "\x1b[33m403\x1b[0m" in out.getvalue()


def test_json_lines_carry_the_same_fields_and_no_bodies_or_headers():
    out = io.StringIO()
    FlowLog(out, "json")(EVENT)
    data = json.loads(out.getvalue())
    assert data == {k: EVENT[k] for k in ("seq", "time", "sandbox", "client", "method", "url",
                                          "host", "action", "rule", "status", "duration_ms",
                                          "upstream")}


def test_the_request_half_of_an_allowed_flow_and_checkpoints_get_no_line_reloads_do():
    assert not shows({"kind": "request"}) and not shows({"kind": "checkpoint"})
    out = io.StringIO()
    log = FlowLog(out)
    log({"kind": "request", **{k: v for k, v in EVENT.items() if k != "kind"}})
    log({"kind": "system", "time": EVENT["time"], "rule": "guard.reload",
         "reason": "rules reloaded (SIGHUP): 3 rules"})
    assert out.getvalue().splitlines()[-1].endswith(
        "guard guard.reload rules reloaded (SIGHUP): 3 rules")
    assert len(out.getvalue().splitlines()) == 1


def test_an_allowed_flow_that_reached_the_real_host_says_so():
    assert line({**EVENT, "action": "allow", "upstream": True}).endswith("[upstream]")


def test_a_closed_terminal_does_not_stop_guard():
    out = io.StringIO()
    out.close()
    FlowLog(out)(EVENT)  # no exception
