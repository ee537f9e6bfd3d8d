"""The control plane across replicas: two ``guard run`` processes on one Redis, each with
its own admin listener, are one set of sandboxes. What one replica's admin API creates,
forks, snapshots or deletes, the other serves (or refuses) at once, with its policy and
its token."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from guard.client import Admin, AdminError, Sandbox
from tests.guard_process import GuardProcess
from tests.redis_server import RedisServer

API = "https://api.stripe.com/v1"
AUTH = {"Authorization": "Bearer sk_test_control"}
TOKEN = "replica-admin-token-0123456789"


@pytest.fixture
def pair(redis_server: RedisServer, confdir: Path,
         tmp_path: Path) -> Iterator[tuple[list[GuardProcess], list[Admin]]]:
    url = redis_server.prefixed()
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    guards: list[GuardProcess] = []
    admins: list[Admin] = []
    try:
        for n in range(2):
            g = GuardProcess(confdir, tmp_path / f"audit-{n}.jsonl", "--store", url,
                             "--sandbox-from", "proxy-user", "--admin-listen", "127.0.0.1:0",
                             "--admin-token-file", str(token_file))
            guards.append(g)
            assert g.admin_url is not None, g.banner
            admins.append(Admin(g.admin_url, TOKEN))
        yield guards, admins
    finally:
        for a in admins:
            a.close()
        for g in guards:
            g.stop()


def _as(sandbox: Sandbox, guard: GuardProcess) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    proxy = sandbox.proxy_url(guard.url)
    s.proxies = {"http": proxy, "https": proxy}
    s.verify = guard.ca
    s.headers.update(AUTH)
    return s


def test_a_sandbox_made_through_one_replica_is_served_by_the_other_with_its_token(
        pair) -> None:
    (a, b), (admin_a, admin_b) = pair
    made = admin_a.create("agent-1", labels={"run": "r1"})
    with _as(made, b) as s:
        r = s.post(f"{API}/customers", data={"email": "one@example.com"})
        assert r.status_code == 200, r.text
        cus = r.json()["id"]
    with _as(made, a) as s:
        assert s.get(f"{API}/customers/{cus}").json()["email"] == "one@example.com"
    assert admin_b.get("agent-1").labels == {"run": "r1"}
    assert [x.id for x in admin_b.list(labels={"run": "r1"})] == ["agent-1"]
    assert admin_b.get("agent-1").world["objects"] >= 1
    forged = Sandbox.of({**admin_b.get("agent-1").__dict__, "token": "gsk_" + "A" * 43})
    with _as(forged, b) as s:
        assert s.get(f"{API}/customers/{cus}").status_code in (403, 407)


def test_a_policy_set_through_one_replica_decides_on_the_other(pair) -> None:
    (a, b), (admin_a, admin_b) = pair
    strict = admin_a.create("strict-1", policy={"name": "no-stripe",
                                                "disable_packs": ["stripe"]})
    open_ = admin_a.create("open-1")
    with _as(strict, b) as s:
        refused = s.post(f"{API}/customers", data={"email": "x@example.com"})
    with _as(open_, b) as s:
        served = s.post(f"{API}/customers", data={"email": "x@example.com"})
    assert served.status_code == 200
    assert refused.status_code == 403
    assert not refused.headers["X-Guard-Rule"].startswith("stripe.")
    assert admin_b.get("strict-1").policy_label == "no-stripe"


def test_deleting_through_one_replica_revokes_the_token_on_the_other(pair) -> None:
    (a, b), (admin_a, admin_b) = pair
    made = admin_a.create("agent-2")
    with _as(made, a) as s:
        assert s.post(f"{API}/customers", data={"name": "A"}).status_code == 200
    admin_b.delete("agent-2")
    with _as(made, a) as s:
        r = s.post(f"{API}/customers", data={"name": "B"})
    assert r.status_code in (403, 407), r.text
    with pytest.raises(AdminError) as e:
        admin_a.get("agent-2")
    assert e.value.status == 404


def test_snapshots_and_forks_made_on_one_replica_are_usable_on_the_other(pair) -> None:
    (a, b), (admin_a, admin_b) = pair
    base = admin_a.create("base-1")
    with _as(base, a) as s:
        cus = s.post(f"{API}/customers", data={"email": "snap@example.com"}).json()["id"]
    snap = admin_a.snapshot("base-1", "snap-1")
    assert [x.id for x in admin_b.snapshots()] == [snap.id]
    kid = admin_b.fork("base-1", "kid-1")
    assert kid.parent == "base-1"
    with _as(kid, a) as s:
        assert s.get(f"{API}/customers/{cus}").json()["email"] == "snap@example.com"
        s.post(f"{API}/customers/{cus}", data={"email": "changed@example.com"})
    from_snap = admin_b.create("from-snap-1", from_="snap-1")
    with _as(from_snap, a) as s:
        assert s.get(f"{API}/customers/{cus}").json()["email"] == "snap@example.com"
    admin_a.reset("kid-1")  # back to what it was forked as, wherever it was forked
    with _as(kid, b) as s:
        assert s.get(f"{API}/customers/{cus}").json()["email"] == "snap@example.com"


def test_one_id_created_on_both_replicas_at_once_exists_once(pair) -> None:
    (a, b), admins = pair

    def create(i: int) -> str:
        try:
            return admins[i % 2].create("race-1").token or ""
        except AdminError as e:
            return f"{e.status} {e.kind}"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(8)))
    won = [x for x in answers if x.startswith("gsk_")]
    assert len(won) == 1, answers
    assert all(x.startswith("409 ") for x in answers if x not in won), answers
    sandbox = admins[0].get("race-1")
    with _as(Sandbox.of({**sandbox.__dict__, "token": won[0]}), b) as s:
        assert s.post(f"{API}/customers", data={"name": "R"}).status_code == 200


def test_two_shared_registries_agree_on_tokens_bindings_and_idle_time(
        redis_server: RedisServer) -> None:
    from guard.errors import SandboxError
    from guard.sandbox.shared import SharedRegistry
    from guard.world.redis import RedisStore

    url = redis_server.prefixed()
    stores = [RedisStore(url), RedisStore(url)]
    try:
        now = [1000.0]
        one, two = (SharedRegistry(s, clock=lambda: now[0]) for s in stores)
        _, token = one.create("idle-1", ttl_seconds=60, client_address="10.0.0.9")
        assert two.by_token(token) == "idle-1" and two.by_address("10.0.0.9") == "idle-1"
        with pytest.raises(SandboxError, match="bound to sandbox 'idle-1'"):
            two.create("idle-2", client_address="10.0.0.9")
        now[0] = 1050.0
        two.touch("idle-1")  # served by the other replica: not idle
        now[0] = 1100.0
        assert one.expired() == []
        now[0] = 1111.0
        assert one.expired() == ["idle-1"] == two.expired()
        one.delete("idle-1")
        with pytest.raises(SandboxError, match="no sandbox"):
            two.delete("idle-1")  # expired by one replica first: the other skips it
        assert two.by_token(token) is None and two.by_address("10.0.0.9") is None
        assert len(two) == 0
    finally:
        for s in stores:
            s.close()
