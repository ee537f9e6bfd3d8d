"""Faults of a Redis-backed deployment: Redis goes away and comes back (with persistence),
and one of two guard replicas dies mid-traffic."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import requests

from guard.options import Options
from guard.proxy.embedded import RunningGuard
from guard.world.redis import RedisStore
from tests.guard_process import GuardProcess
from tests.redis_server import RedisServer

AUTH = {"Authorization": "Bearer sk_test_faults"}
API = "https://api.stripe.com/v1"


def _session(g: RunningGuard) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies, s.verify = g.proxies, g.ca
    s.headers.update(AUTH)
    return s


def test_redis_down_fails_closed_with_503_and_an_audit_event_and_worlds_survive_a_restart(
        confdir: Path, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persist=True)
    (tmp_path / "redis").mkdir()
    server.start()
    audit = tmp_path / "audit.jsonl"
    cfg = Options(listen_port=0, confdir=confdir, quiet=True, audit=audit,
                    store=server.prefixed())
    try:
        with RunningGuard(cfg) as g:
            s = _session(g)
            cus = s.post(f"{API}/customers", data={"email": "kept@example.com"}).json()["id"]
            server.stop()
            down = s.post(f"{API}/customers", data={"email": "lost@example.com"})
            assert down.status_code == 503
            error = down.json()["error"]
            assert error["rule"] == "guard.store-unavailable"
            assert "unavailable" in error["message"]
            server.start()  # same port, same append-only file
            back = s.get(f"{API}/customers/{cus}")
            assert back.status_code == 200 and back.json()["email"] == "kept@example.com"
            listed = s.get(f"{API}/customers", params={"limit": 100}).json()["data"]
            assert [c["email"] for c in listed] == ["kept@example.com"]
        events = [json.loads(line) for line in audit.read_text().splitlines()]
        refused = [e for e in events if e.get("rule") == "guard.store-unavailable"]
        assert len(refused) == 1 and refused[0]["status"] == 503
        assert refused[0]["upstream"] is False
        # the registry was away, so no sandbox was proven: the event names none (not the
        # sandbox called "default"), and the client's address says who asked
        assert refused[0]["sandbox"] == "" and refused[0]["client"] == "127.0.0.1"
    finally:
        server.stop()


def test_killing_one_of_two_replicas_mid_traffic_loses_and_duplicates_nothing(
        redis_server: RedisServer, confdir: Path, tmp_path: Path) -> None:
    url = redis_server.prefixed()
    a = GuardProcess(confdir, tmp_path / "a.jsonl", "--store", url, "-q")
    b = GuardProcess(confdir, tmp_path / "b.jsonl", "--store", url, "-q")
    ok: dict[str, str] = {}  # email -> customer id, for every 200
    failed: list[str] = []
    lock = threading.Lock()

    def client(n: int, target: list[GuardProcess]) -> None:
        sessions = [g.session(**AUTH) for g in target]
        for i in range(30):
            email = f"c{n}-{i}@example.com"
            s = sessions[i % len(sessions)]
            try:
                r = s.post(f"{API}/customers", data={"email": email}, timeout=10)
            except requests.RequestException:
                with lock:
                    failed.append(email)
                continue
            with lock:
                if r.status_code == 200:
                    ok[email] = r.json()["id"]
                else:
                    failed.append(email)

    try:
        threads = [threading.Thread(target=client, args=(n, [a, b])) for n in range(3)]
        for t in threads:
            t.start()
        while len(ok) < 20:  # well into the traffic
            threading.Event().wait(0.05)
        a.kill()
        for t in threads:
            t.join()
        survivor = b.session(**AUTH)
        after = survivor.post(f"{API}/customers", data={"email": "after@example.com"})
        assert after.status_code == 200
        ok["after@example.com"] = after.json()["id"]
    finally:
        a.kill()
        b.stop()
    assert failed, "the kill should have cost some requests to a"
    store = RedisStore(url)
    try:
        stored = store.world("127.0.0.1").list("stripe.customers")
    finally:
        store.close()
    emails = [c["email"] for c in stored]
    assert len(emails) == len(set(emails)), "an object was duplicated"
    by_email = {c["email"]: c["id"] for c in stored}
    assert all(by_email.get(e) == i for e, i in ok.items()), "an answered object was lost"
    # what is stored beyond the answered ones can only be requests a died answering
    assert set(by_email) - set(ok) <= set(failed)
