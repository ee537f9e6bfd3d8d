"""When the audit log cannot be written, guard answers 503 saying why, and lets nothing
through unrecorded: not the simulated answer, not an allowed request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guard.errors import AuditError
from guard.options import Options
from guard.proxy.master import build
from tests.audit.audit_helpers import RULES, session
from tests.stores import session_store as STORE


def test_a_full_disk_turns_every_answer_into_503_naming_the_log(guard_proxy, echo_upstream):
    g = guard_proxy(RULES, audit=Path("/dev/full"))  # every write fails with ENOSPC
    s = session(g)
    first = s.post("https://mail.test/send", json={"to": "a@b.c", "subject": "s", "text": "t"})
    assert first.status_code == 503
    error = first.json()["error"]
    assert error["rule"] == "guard.audit-unavailable"
    assert "cannot write audit log /dev/full" in error["message"]
    assert "No space left on device" in error["message"]

    allowed = s.get(f"http://127.0.0.1:{echo_upstream.port}/allowed/x")
    assert allowed.status_code == 503 and "audit log" in allowed.json()["error"]["message"]
    assert echo_upstream.connections == 0  # refused before any upstream connection


def test_a_log_that_cannot_be_opened_stops_start_up(tmp_path, confdir):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = Options(audit=blocker / "audit.jsonl", confdir=confdir, listen_port=0, store=STORE())
    with pytest.raises(AuditError, match="cannot open audit log"):
        build(cfg)
    run = subprocess.run([sys.executable, "-m", "guard", "run", "--audit",
                          str(blocker / "audit.jsonl"), "--confdir", str(confdir),
                          "--listen-port", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "not starting: cannot open audit log" in run.stderr


def _tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_filesystem_filling_up_mid_session_blocks_from_then_on(guard_proxy, tmp_path):
    mount = tmp_path / "small"
    if not _tmpfs(mount, "64k"):
        if os.environ.get("GUARD_REQUIRE_NETNS"):
            pytest.fail("needs root and tmpfs mounts here")
        pytest.skip("needs root to mount a tiny tmpfs")
    try:
        log = mount / "audit.jsonl"
        g = guard_proxy(RULES, audit=log)
        s = session(g)
        statuses = []
        for i in range(400):
            r = s.post("https://mail.test/send",
                       json={"to": "a@b.c", "subject": f"n{i}", "text": "x" * 500})
            statuses.append(r.status_code)
            if r.status_code == 503:
                break
        assert statuses[0] == 202 and statuses[-1] == 503
        assert "No space left on device" in r.json()["error"]["message"]
        assert s.get("https://echo.test/after").status_code == 503
        g.stop()
        # every answer that went out as 202 is in the log
        written = [json.loads(x) for x in log.read_text().splitlines() if x.endswith("}")]
        assert len([e for e in written if e.get("status") == 202]) == statuses.count(202)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_damaged_line_that_is_not_a_torn_write_still_stops_start_up(log_copy, confdir):
    # A whole line (it ends with a newline) that is not an event: not something a crash
    # leaves behind, so guard will not write after it.
    log_copy.write_text(log_copy.read_text() + '{"v": 1, "seq": 8, "kind": "fl\n')
    with pytest.raises(AuditError, match="ends with a damaged line"):
        build(Options(audit=log_copy, confdir=confdir, listen_port=0, store=STORE()))
