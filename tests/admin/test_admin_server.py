"""Starting the admin listener: token rules, refusals, a taken port."""

from __future__ import annotations

import socket
import stat

import pytest

from guard.admin.server import load_token
from guard.errors import SandboxError
from guard.options import Options
from guard.proxy.master import build


def test_a_non_loopback_listener_without_a_token_file_is_refused(tmp_path):
    for host in ("0.0.0.0", "10.1.2.3", "::", "example.com"):
        with pytest.raises(SandboxError, match="not a loopback address"):
            load_token(host, None, tmp_path)


def test_a_loopback_listener_without_a_token_file_makes_one_only_its_owner_reads(tmp_path):
    token = load_token("127.0.0.1", None, tmp_path)
    path = tmp_path / "admin-token"
    assert path.read_text().strip() == token and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token("127.0.0.1", None, tmp_path) != token  # a new one per start


def test_a_token_file_is_read_and_must_be_long_enough(tmp_path):
    good, short = tmp_path / "good", tmp_path / "short"
    good.write_text("a-long-enough-admin-token\nignored\n")
    short.write_text("short\n")
    assert load_token("0.0.0.0", good, tmp_path) == "a-long-enough-admin-token"
    with pytest.raises(SandboxError, match="shorter than"):
        load_token("0.0.0.0", short, tmp_path)
    with pytest.raises(SandboxError, match="cannot read"):
        load_token("0.0.0.0", tmp_path / "missing", tmp_path)


def test_a_taken_admin_port_stops_start_up(confdir, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SandboxError, match="cannot serve the admin API"):
            build(Options(listen_port=0, confdir=confdir, audit=tmp_path / "a.jsonl",
                            admin_listen=("127.0.0.1", port)))


def test_guard_run_refuses_a_public_admin_listener_without_a_token(capsys, confdir):
    from guard.cli import main

    code = main(["run", "--listen-port", "0", "--confdir", str(confdir), "--admin-listen",
                 "0.0.0.0:0"])
    assert code == 1
    assert "not a loopback address" in capsys.readouterr().err


def test_guard_stops_promptly_with_an_event_stream_open(confdir, tmp_path):
    """uvicorn waits for open connections on shutdown; an SSE client must not keep guard up.
    Compared with the same guard stopped with no stream open (no wall-clock constant)."""
    import threading
    import time

    import httpx

    from guard.proxy.embedded import RunningGuard

    def stop_time(with_stream: bool) -> float:
        cfg = Options(listen_port=0, confdir=confdir, quiet=True, audit=tmp_path / "a.jsonl",
                        admin_listen=("127.0.0.1", 0), sandbox_from="proxy-user")
        g = RunningGuard(cfg).__enter__()
        headers = {"Authorization": f"Bearer {g.admin_token}"}
        httpx.post(g.admin_url + "/v1/sandboxes", json={"id": "s"}, headers=headers)
        if with_stream:
            def follow() -> None:
                try:
                    with httpx.stream("GET", g.admin_url + "/v1/sandboxes/s/events/stream",
                                      headers=headers, timeout=None) as r:
                        for _ in r.iter_lines():
                            pass
                except httpx.HTTPError:
                    pass
            threading.Thread(target=follow, daemon=True).start()
            time.sleep(0.5)
        t = time.perf_counter()
        g.stop()
        return time.perf_counter() - t

    baseline = stop_time(False)
    assert stop_time(True) < baseline + 10  # the 15 s keep-alive wait would exceed this
