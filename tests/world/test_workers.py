"""``guard run --workers N``: N processes on one port sharing worlds through Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from guard.cli import workers
from guard.cli.workers import child_argv
from guard.world.redis import RedisStore
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent.parent
API = "https://api.stripe.com/v1"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("guard --workers did not listen")


def test_workers_refuse_the_in_process_store_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GUARD_STORE"}
    out = subprocess.run([sys.executable, "-m", "guard", "run", "--workers", "2",
                          "--confdir", str(tmp_path / "conf")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2
    assert "--workers 2 needs a shared world store" in out.stderr
    assert "--store redis://" in out.stderr


@pytest.mark.parametrize("flags", [["--listen-port", "{p}", "--smtp-port", "{p}"],
                                   ["--listen-port", "{p}", "--smtps-port", "{p}"],
                                   ["--admin-listen", "127.0.0.1:{p}", "--smtp-port", "{p}"],
                                   ["--smtp-port", "{p}", "--smtps-port", "{p}"]])
def test_workers_refuse_two_listeners_on_one_port(tmp_path: Path, flags: list[str]) -> None:
    # Refused in guard's words before anything binds (the supervisor's bind would fail too).
    p = str(_port())
    out = subprocess.run([sys.executable, "-m", "guard", "run", "--workers", "2", "--store",
                          "redis://127.0.0.1:1/0", "--confdir", str(tmp_path / "conf"),
                          *[f.format(p=p) for f in flags]],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "not starting" in out.stderr and f" {p} is also " in out.stderr, out.stderr


def test_workers_that_cannot_start_stop_the_gateway_at_once_with_their_reason(
        tmp_path: Path) -> None:
    # A worker that exits before it ever served, on its first start, failed on its options
    # (here an audit directory that does not exist): starting it again would fail the same
    # way, so the gateway stops with the worker's own message rather than looping.
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "guard", "run", "--workers", "2", "--store",
                          "redis://127.0.0.1:1/0", "--listen-port", str(_port()),
                          "--confdir", str(tmp_path / "conf"),
                          "--audit", str(tmp_path / "missing" / "audit.jsonl")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "there is no directory" in out.stderr and "did not start" in out.stderr, out.stderr
    assert "starting it again" not in out.stderr, out.stderr
    assert time.monotonic() - started < 60


def test_ports_picked_for_the_workers_avoid_the_ports_already_chosen(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel may hand out a port again once its probe socket is closed (the CI run that
    # found this put the SMTP sink on the proxy's port): pick again until it is not taken.
    handed = iter([8080, 8080, 9090, 2525])

    class Probe:
        def __enter__(self) -> Probe:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def bind(self, address: tuple[str, int]) -> None:
            self.port = next(handed)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(workers.socket, "socket", Probe)
    assert workers._free_port("127.0.0.1", avoid={8080, 9090}) == 2525


def test_the_worker_command_line_drops_workers_and_names_the_port() -> None:
    assert child_argv(["--workers", "2", "-q", "--workers=3", "--store", "redis://x"],
                      8123) == ["-q", "--store", "redis://x", "--listen-port", "8123"]


def test_two_workers_share_one_port_and_one_world_and_stop_on_sigterm(
        redis_server: RedisServer, confdir: Path, tmp_path: Path) -> None:
    url, port = redis_server.prefixed(), _port()
    audit = tmp_path / "audit.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "run", "--workers", "2", "--listen-port", str(port),
         "--confdir", str(confdir), "--audit", str(audit), "--store", url, "-q",
         "--no-reload"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _wait(port, proc)
        ca = str(confdir / "mitmproxy-ca-cert.pem")
        ids = []
        for i in range(40):  # a new connection each: the kernel spreads them over workers
            with requests.Session() as s:
                s.trust_env = False
                r = s.post(f"{API}/customers", data={"email": f"w{i}@example.com"},
                           headers={"Authorization": "Bearer sk_test_workers"},
                           proxies={"https": f"http://127.0.0.1:{port}"}, verify=ca,
                           timeout=30)
            assert r.status_code == 200
            ids.append(r.json()["id"])
        files = sorted(tmp_path.glob("audit.*-*.jsonl"))
        assert len(files) == 2, files  # one chain per worker
        counts = [sum(1 for line in f.read_text().splitlines()
                      if json.loads(line).get("kind") == "flow") for f in files]
        assert all(c > 0 for c in counts) and sum(counts) == 40, counts
        store = RedisStore(url)
        try:
            stored = [c["id"] for c in store.world("127.0.0.1").list("stripe.customers")]
        finally:
            store.close()
        assert sorted(stored) == sorted(ids) and len(set(ids)) == 40
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        with socket.socket() as s:  # nothing listens any more
            assert s.connect_ex(("127.0.0.1", port)) != 0
        verified = subprocess.run([sys.executable, "-m", "guard", "audit", "verify",
                                   str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
        assert verified.returncode == 0 and "2 of 2 chains intact" in verified.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


PACK = """pack: hello
hosts: [api.hello.test]
rules:
  - id: hello.get
    match: {{method: GET, path: /hello}}
    action: simulate
    respond:
      status: 200
      body: {{version: {version}}}
"""


def _banner(proc: subprocess.Popen[str], *wanted: str, timeout: float = 60) -> dict[str, str]:
    """Read the supervisor's output (worker 0 prints the banner) until every line starting
    with one of ``wanted`` has been seen; returns those lines by prefix."""
    found: dict[str, str] = {}
    deadline = time.time() + timeout
    assert proc.stdout is not None
    while time.time() < deadline and len(found) < len(wanted):
        line = proc.stdout.readline()
        if not line:
            break
        for w in wanted:
            if w in line:
                found[w] = line
    assert len(found) == len(wanted), found
    return found


def _reloads(files: list[Path]) -> list[int]:
    return [sum(1 for line in f.read_text().splitlines()
                if json.loads(line).get("rule") == "guard.reload"
                and json.loads(line).get("action") == "reload") for f in files]


def test_sighup_reloads_every_worker_and_worker_0_serves_the_admin_api_and_smtp_for_all(
        redis_server: RedisServer, confdir: Path, tmp_path: Path) -> None:
    import re
    import smtplib

    from guard.client import Admin

    url, port = redis_server.prefixed(), _port()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hello.yaml").write_text(PACK.format(version=1))
    token_file = tmp_path / "admin-token"
    token_file.write_text("workers-admin-token-0123456789\n")
    audit = tmp_path / "audit.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "run", "--workers", "2", "--listen-port", str(port),
         "--confdir", str(confdir), "--audit", str(audit), "--store", url, "--rules",
         str(rules), "--no-reload", "--admin-listen", f"127.0.0.1:{_port()}",
         "--admin-token-file", str(token_file), "--smtp-port", "0"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = _banner(proc, "guard: admin API on", "guard: SMTP sink")
        admin_url = re.search(r"admin API on (\S+)", lines["guard: admin API on"]).group(1)
        smtp_port = int(re.search(r"SMTP [^:]+:(\d+)", lines["guard: SMTP sink"]).group(1))
        _wait(port, proc)
        ca = str(confdir / "mitmproxy-ca-cert.pem")

        def hello() -> int:
            with requests.Session() as s:  # a new connection: any worker may take it
                s.trust_env = False
                r = s.get("https://api.hello.test/hello", verify=ca, timeout=30,
                          proxies={"https": f"http://127.0.0.1:{port}"})
            assert r.status_code == 200, r.text
            return int(r.json()["version"])

        with Admin(admin_url, "workers-admin-token-0123456789") as admin:
            admin.create("w-1", client_address="127.0.0.1")  # through worker 0 only
            assert {hello() for _ in range(20)} == {1}  # served as w-1 by both workers
            for i in range(16):  # one port, every worker's sink (one queue)
                with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
                    smtp.sendmail("ops@example.com", [f"to{i}@example.com"],
                                  b"Subject: hi\r\n\r\nfrom a worker\r\n")
            files = sorted(tmp_path.glob("audit.*-*.jsonl"))
            assert len(files) == 2
            mails = [sum(1 for line in f.read_text().splitlines()
                         if json.loads(line).get("rule") == "guard.smtp.sink") for f in files]
            assert sum(mails) == 16 and all(mails), mails
            # worker 0's admin API sees what both workers served for its sandbox
            assert admin.get("w-1").world["counts"]["outbox"] == 16
            assert len([e for e in admin.events("w-1", limit=100)
                        if e.get("rule") == "hello.get"]) == 20

            (rules / "hello.yaml").write_text(PACK.format(version=2))
            before = _reloads(files)
            proc.send_signal(signal.SIGHUP)  # the supervisor passes it to every worker
            deadline = time.time() + 60
            while time.time() < deadline and not all(
                    a > b for a, b in zip(_reloads(files), before, strict=True)):
                time.sleep(0.2)
            assert all(a > b for a, b in zip(_reloads(files), before, strict=True))
            assert {hello() for _ in range(20)} == {2}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_workers_stop_when_their_supervisor_is_killed(
        redis_server: RedisServer, confdir: Path, tmp_path: Path) -> None:
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "run", "--workers", "2", "--listen-port", str(port),
         "--confdir", str(confdir), "--audit", str(tmp_path / "audit.jsonl"), "--store",
         redis_server.prefixed(), "-q", "--no-reload"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, text=True)
    try:
        _wait(port, proc)  # the port is up before the workers (the supervisor binds it)
        children: list[int] = []
        deadline = time.time() + 60
        while len(children) < 2 and time.time() < deadline:
            time.sleep(0.2)
            children = [int(p) for task in Path(f"/proc/{proc.pid}/task").iterdir()
                        for p in (task / "children").read_text().split()]
        assert len(children) == 2, children
        proc.kill()  # no SIGTERM to forward: the workers must notice by themselves
        proc.wait()
        deadline = time.time() + 30
        while time.time() < deadline and any(Path(f"/proc/{c}").exists() and
                                             "Z" not in _state(c) for c in children):
            time.sleep(0.2)
        assert not [c for c in children if Path(f"/proc/{c}").exists() and "Z" not in _state(c)]
        with socket.socket() as s:  # and nothing serves the port as an orphan
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
