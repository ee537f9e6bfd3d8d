"""guard audit verify: an intact log passes; altering, removing, inserting or reordering
an event names the first bad sequence number; signed checkpoints catch a cut-off end and a
rewritten chain; rotation and restarts keep one chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.audit.signing import keygen
from guard.audit.writer import event_hash
from guard.cli import main
from guard.options import Options
from guard.proxy.embedded import RunningGuard
from tests.audit.audit_helpers import RULES, EchoUpstream, agent_session
from tests.sandboxes import KEY_FILE
from tests.stores import session_store as STORE


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def verify(capsys, *args: str | Path) -> tuple[int, str]:
    code = main(["audit", "verify", *map(str, args)])
    return code, capsys.readouterr().out


def run_guard(tmp_path: Path, confdir: Path, **options) -> Path:
    up = EchoUpstream()
    options.setdefault("audit", tmp_path / "audit.jsonl")
    cfg = Options(rules=[str(RULES)], listen_port=0, confdir=confdir, quiet=True, state=None, store=STORE(),
                    sandbox_from="header", sandbox_key=KEY_FILE, **options)
    try:
        with RunningGuard(cfg) as g:
            agent_session(g, up.port)
    finally:
        up.close()
    return options["audit"]


def test_an_intact_log_verifies_with_exit_0(log_copy, capsys):
    code, out = verify(capsys, log_copy)
    assert code == 0, out
    assert out.startswith("ok: 8 events (7 flows, 0 checkpoints)")  # 1 allowed: 2 events
    assert "note: the log has no signed checkpoints: events cut off its end cannot be " \
        "detected" in out


def test_an_altered_event_is_named_by_its_sequence_number(log_copy, capsys):
    text = lines(log_copy)
    event = json.loads(text[2])
    event["status"] = 200  # a blocked upload made to look harmless
    text[2] = json.dumps(event) + "\n"
    log_copy.write_text("".join(text))
    code, out = verify(capsys, log_copy)
    assert code == 1
    assert out.startswith("FAIL: seq 3: altered")


def test_a_removed_event_is_named(log_copy, capsys):
    text = lines(log_copy)
    del text[3]
    log_copy.write_text("".join(text))
    code, out = verify(capsys, log_copy)
    assert code == 1 and out.startswith("FAIL: seq 4: missing")


def test_an_inserted_event_is_named(log_copy, capsys):
    text = lines(log_copy)
    text.insert(4, text[1])
    log_copy.write_text("".join(text))
    code, out = verify(capsys, log_copy)
    assert code == 1 and out.startswith("FAIL: seq 5: out of place")


def test_reordered_events_are_named(log_copy, capsys):
    text = lines(log_copy)
    text[2], text[3] = text[3], text[2]
    log_copy.write_text("".join(text))
    code, out = verify(capsys, log_copy)
    assert code == 1 and out.startswith("FAIL: seq 3:")


def test_a_damaged_line_is_named(log_copy, capsys):
    text = lines(log_copy)
    text[5] = text[5][:40] + "\n"
    log_copy.write_text("".join(text))
    code, out = verify(capsys, log_copy)
    assert code == 1 and out.startswith("FAIL: seq 6: unreadable line")


@pytest.fixture
def signed(tmp_path, confdir) -> tuple[Path, Path]:
    key = tmp_path / "audit.key"
    keygen(key)
    log = run_guard(tmp_path, confdir, audit_key=key, audit_checkpoint_every=3)
    return log, key


def test_a_signed_log_ends_with_a_shutdown_checkpoint_and_verifies(signed, capsys):
    log, key = signed
    code, out = verify(capsys, log, "--key", key)
    assert code == 0, out
    assert "7 flows, 3 checkpoints, 3 signed checkpoint(s) verified" in out
    assert json.loads(lines(log)[-1])["reason"] == "shutdown"


def test_a_truncated_end_is_caught_only_with_the_key(signed, capsys):
    log, key = signed
    log.write_text("".join(lines(log)[:-2]))  # the shutdown checkpoint and one flow cut off
    assert verify(capsys, log)[0] == 0  # a plain chain cannot see a clean cut
    code, out = verify(capsys, log, "--key", key)
    assert code == 1
    assert "ends at seq 9 without a signed shutdown checkpoint" in out


def test_a_rewritten_chain_passes_the_hashes_but_not_the_signatures(signed, capsys):
    log, key = signed
    events = [json.loads(x) for x in lines(log)]
    events[1]["url"] = "https://mail.test/nothing-to-see"
    for i in range(1, len(events)):  # the tamperer recomputes every hash after the change
        events[i]["prev"] = events[i - 1]["hash"]
        events[i]["hash"] = event_hash(events[i])
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert verify(capsys, log)[0] == 0
    code, out = verify(capsys, log, "--key", key)
    assert code == 1 and out.startswith("FAIL: seq 4: checkpoint signature is invalid")


def test_a_different_key_does_not_verify(signed, tmp_path, capsys):
    log, _ = signed
    other = tmp_path / "other.key"
    keygen(other)
    code, out = verify(capsys, log, "--key", other)
    assert code == 1 and "not with the given hmac-sha256 key" in out


def test_ed25519_checkpoints_verify_with_the_public_key_alone(tmp_path, confdir, capsys):
    key = tmp_path / "ed.key"
    private, public = keygen(key, ed25519=True)
    log = run_guard(tmp_path, confdir, audit_key=private)
    code, out = verify(capsys, log, "--key", public)
    assert code == 0 and "1 signed checkpoint(s) verified" in out
    log.write_text("".join(lines(log)[:-1]))
    assert verify(capsys, log, "--key", public)[0] == 1


def test_rotation_keeps_one_chain_across_files(tmp_path, confdir, capsys):
    log = run_guard(tmp_path, confdir, audit_max_bytes=4000)
    files = sorted(tmp_path.glob("audit.jsonl*"))
    assert len(files) >= 3
    first_seqs = [json.loads(lines(f)[0])["seq"] for f in
                  [*sorted(tmp_path.glob("audit.jsonl.*"), key=lambda p: int(p.suffix[1:])),
                   log]]
    assert first_seqs[0] == 1 and first_seqs == sorted(first_seqs)
    code, out = verify(capsys, log)  # the active file names the whole set
    assert code == 0 and "7 flows" in out, out

    code, out = verify(capsys, log.with_name("audit.jsonl.2"), log)
    assert code == 1 and "FAIL: seq 1:" in out  # the oldest file is missing
    assert verify(capsys, "--partial", log.with_name("audit.jsonl.2"), log)[0] == 0


def test_a_restarted_guard_continues_the_chain(tmp_path, confdir, capsys):
    log = run_guard(tmp_path, confdir)
    run_guard(tmp_path, confdir)
    assert json.loads(lines(log)[-1])["seq"] == 16
    assert verify(capsys, log)[0] == 0


def test_an_unreadable_log_exits_2(tmp_path, capsys):
    assert main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 2
