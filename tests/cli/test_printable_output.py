"""What people read cannot be forged: every command that prints request data (audit list,
show, tail, summary; outbox; state; replay; explain; coverage) shows escape sequences,
carriage returns, backspaces, bidi overrides and C1 controls from a sandbox as visible
escapes, in its text and in its JSON output, so an agent cannot erase or forge a row on
a reviewer's terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard import outbox
from guard.audit.event import EventBuilder, FlowRecord
from guard.audit.recorder import Recorder
from guard.audit.writer import AuditWriter
from guard.cli import main
from guard.request import Request
from guard.world import MemoryStore

# ESC (erase screen, set the window title), CR, BS, a bidi override, C1 CSI, DEL
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\rforged row\x08\u202e\x9b31m\x7f"
RAW = ("\x1b", "\r", "\x08", "\u202e", "\x9b", "\x7f", "\x07")
SANDBOX = "agent" + HOSTILE


def clean(text: str) -> None:
    """No character of the hostile text reaches the output raw (newlines are the
    command's own)."""
    for c in RAW:
        assert c not in text, f"{c!r} printed raw in:\n{text!r}"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("printable") / "audit.jsonl"
    writer = AuditWriter(path)
    writer.open()
    rec = Recorder(writer, EventBuilder())
    for host, rule, action in [("evil.test", "guard.default-deny", "block"),
                               ("api.stripe.com", "stripe.customers.list", "simulate")]:
        req = Request.build("GET", f"https://{host}/a{HOSTILE}?q={HOSTILE}",
                            headers={"user-agent": HOSTILE}, sandbox=SANDBOX,
                            client="10.0.0.7")
        rec.flow(FlowRecord(req, rule, action, reason=f"because {HOSTILE}", status=403,
                            response_body=HOSTILE.encode(), started=1.0))
    writer.close()
    return path


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state")
    store = MemoryStore(state_dir=path)
    world = store.world(SANDBOX)
    with world.transaction():
        outbox.add(world, outbox.Message("sendgrid", sender=f"a{HOSTILE}@x.test",
                                         to=[f"b{HOSTILE}@y.test"], subject=HOSTILE,
                                         text=HOSTILE), rule_id="sendgrid.mail.send")
    store.flush(world)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("argv", [
    ("audit", "list"), ("audit", "list", "--json"), ("audit", "show", "1"),
    ("audit", "show", "--json", "2"), ("audit", "tail"), ("audit", "summary"),
    ("audit", "summary", "--json"),
], ids=lambda a: " ".join(a))
def test_audit_commands_escape_what_sandboxes_sent(capsys, log, argv):
    args = [*argv[:-1], str(log), argv[-1]] if argv[-1].isdigit() else [*argv, str(log)]
    code, out = run(capsys, *args)
    assert code == 0, out
    clean(out)
    assert "\\x1b[2J" in out or "\\u001b[2J" in out  # shown, not dropped


def test_audit_json_output_is_still_the_same_json(capsys, log):
    _, out = run(capsys, "audit", "list", "--json", str(log))
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert events and all(e["sandbox"] == SANDBOX for e in events)


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
def test_outbox_escapes_the_messages_and_the_sandbox(capsys, state, json_flag):
    code, out = run(capsys, "outbox", "--state", str(state), *json_flag)
    assert code == 0, out
    clean(out)
    assert "out_000001" in out


def test_state_list_escapes_sandbox_names(capsys, state):
    code, out = run(capsys, "state", "list", "--state", str(state))
    assert code == 0, out
    clean(out)
    assert "agent\\x1b[2J" in out


def test_state_export_names_the_sandbox_escaped(capsys, state, tmp_path):
    code, out = run(capsys, "state", "export", "--state", str(state), "--sandbox", SANDBOX,
                    str(tmp_path / "w.json"))
    assert code == 0, out
    clean(out)


@pytest.mark.parametrize("flags", [("--all",), ("--all", "--json")], ids=["text", "json"])
def test_replay_escapes_the_replayed_requests(capsys, log, flags):
    code, out = run(capsys, "replay", *flags, str(log))
    clean(out)
    assert "evil.test" in out


def test_explain_escapes_the_url_it_was_given(capsys):
    code, out = run(capsys, "explain", "GET", f"https://evil.test/{HOSTILE}",
                    "-H", f"X-A: {HOSTILE}")
    clean(out)
    assert "guard.default-deny" in out


def test_coverage_escapes_unmatched_hosts_and_examples(capsys, log):
    code, out = run(capsys, "coverage", str(log))
    assert code == 0, out
    clean(out)
    assert "evil.test" in out


def test_audit_verify_notes_a_log_without_checkpoints(capsys, log):
    code, out = run(capsys, "audit", "verify", str(log))
    assert code == 0 and out.startswith("ok: 2 events (2 flows, 0 checkpoints)")
    assert "note: the log has no signed checkpoints: events cut off its end cannot be " \
        "detected" in out
