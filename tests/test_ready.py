"""``guard ready``: the readiness probe the deployment files use, against a real guard."""

from __future__ import annotations

from pathlib import Path

from guard.cli import main
from guard.options import Options
from guard.proxy.embedded import RunningGuard
from tests.conftest import free_port
from tests.redis_server import RedisServer


def test_ready_when_guard_answers_and_not_when_nothing_listens(
        guard_proxy, capsys) -> None:
    g = guard_proxy()
    assert main(["ready", "--proxy", g.url]) == 0
    assert main(["ready", "--proxy", f"http://127.0.0.1:{free_port()}", "--timeout",
                 "2"]) == 1
    assert "not ready" in capsys.readouterr().err


def test_not_ready_while_the_world_store_is_down(confdir: Path, tmp_path: Path,
                                                 capsys) -> None:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    url = server.prefixed()
    try:
        cfg = Options(listen_port=0, confdir=confdir, quiet=True, store=url,
                        audit=tmp_path / "audit.jsonl")
        with RunningGuard(cfg) as g:
            assert main(["ready", "--proxy", g.url, "--store", url]) == 0
            server.stop()
            assert main(["ready", "--proxy", g.url, "--store", url]) == 1
            assert "unavailable" in capsys.readouterr().err
    finally:
        server.stop()
