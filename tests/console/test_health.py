"""Readiness against guards of their own: it goes false while the audit log cannot be
written or the Redis world store is away, and comes back by itself; reloads are counted.

Every test here starts its own guard (no shared one may run meanwhile: see conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.console.console_helpers import admin, agent, moved, ready, sandbox, scrape, value
from tests.redis_server import RedisServer


def fill(directory: Path, leave: int) -> Path:
    """Fill the file system of ``directory`` up to ``leave`` free bytes."""
    filler = directory / "filler"
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    with open(filler, "ab") as f:
        f.write(b"\0" * max(0, free - leave))
    with open(filler, "ab") as f:  # tmpfs rounds to pages: top it up byte by byte
        while os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize > leave:
            try:
                f.write(b"\0" * 4096)
                f.flush()
            except OSError:
                break
    return filler


def test_readiness_goes_false_while_the_audit_log_cannot_be_written(guard_proxy,
                                                                    small_disk) -> None:
    g = guard_proxy(audit=small_disk / "audit.jsonl", admin_listen=("127.0.0.1", 0),
                    sandbox_from="header")
    assert ready(g).status_code == 200
    filler = fill(small_disk, 0)
    r = ready(g, token=True)
    assert r.status_code == 503 and r.json()["ready"] is False
    assert "bytes free" in r.json()["checks"]["audit"]
    assert ready(g).json()["checks"]["audit"] == "failing"  # no detail without the token
    with agent(g, sandbox("disk")) as a:
        refused = a.get("http://any.test/")
    assert refused.status_code == 503 and refused.json()["error"]["rule"] == \
        "guard.audit-unavailable"
    samples = scrape(g)
    assert value(samples, "guard_audit_write_failures_total") >= 1
    assert value(samples, "guard_audit_writable") == 0
    filler.unlink()
    g.guard.audit.retry_seconds = 0  # heal on the next probe, not a second later
    assert ready(g).status_code == 200  # healed by the probe itself, no request needed
    with agent(g, sandbox("disk")) as a:
        assert a.get("http://any.test/").status_code == 403  # decided again
    assert value(scrape(g), "guard_audit_writable") == 1


def test_readiness_goes_false_while_redis_is_away(guard_proxy, tmp_path) -> None:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    try:
        g = guard_proxy(store=server.prefixed(), admin_listen=("127.0.0.1", 0))
        assert ready(g).json()["checks"]["store"] == "ok"
        server.stop()
        r = ready(g, token=True)
        assert r.status_code == 503 and r.json()["checks"]["store"] != "ok"
        assert r.json()["checks"]["audit"] == "ok"
        with admin(g) as c:  # a scrape still answers, without the world gauges
            scraped = c.get("/metrics")
            assert scraped.status_code == 200 and "guard_requests_total" in scraped.text
        server.start()  # the same port
        assert ready(g).status_code == 200
    finally:
        server.stop()


def test_reloads_are_counted(guard_proxy, tmp_path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("pack: p\nhosts: [a.test]\nrules:\n  - id: a.block\n    action: block\n")
    g = guard_proxy(rules, admin_listen=("127.0.0.1", 0), builtin=False, reload=False)
    before = scrape(g)
    assert g.reload("test")
    rules.write_text("pack: p\nrules: [\n")
    assert not g.reload("test")
    after = scrape(g)
    assert moved(before, after, "guard_reloads_total", result="ok") == 1
    assert moved(before, after, "guard_reloads_total", result="failed") == 1
    assert value(after, "guard_rules") == 1
