"""guard on a real three-node Redis Cluster (``--store redis://...?cluster=yes``): every
key of a store in the one slot of its prefix's hash tag, so every script runs on one node;
stores with other tags on other nodes. The store's own tests run on the cluster too
(``cluster`` in tests/world/conftest.py's backends)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from guard.client import Admin
from guard.errors import WorldError
from guard.world.redis import RedisStore
from tests.redis_cluster import RedisClusterServers
from tests.world.test_workers_observability import (
    API,
    TOKEN,
    _audited_total,
    _gateway,
    _requests_total,
    _until,
)


def test_a_cluster_store_needs_a_hash_tag_in_its_prefix(
        redis_cluster: RedisClusterServers) -> None:
    with pytest.raises(WorldError, match=r"needs a hash tag in its key prefix"):
        RedisStore(redis_cluster.url + "&prefix=team-a:")
    store = RedisStore(redis_cluster.url)  # no prefix: guard's own, tagged
    try:
        assert store.prefix == "{guard}:"
        assert "cluster" in store.describe()
    finally:
        store.close()


def _slots_and_nodes(cluster: RedisClusterServers, prefix: str) -> tuple[set[int], set[str]]:
    rc = RedisCluster(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
    try:
        keys = list(rc.scan_iter(match=prefix.replace("{", "[{]") + "*",
                                 target_nodes=RedisCluster.ALL_NODES))
        assert keys
        slots = {rc.keyslot(k) for k in keys}
        nodes = {rc.get_node_from_key(k).name for k in keys}
        return slots, nodes
    finally:
        rc.close()


def test_a_two_worker_gateway_serves_from_a_redis_cluster(
        redis_cluster: RedisClusterServers, confdir: Path, tmp_path: Path) -> None:
    store = redis_cluster.prefixed()
    prefix = store.rsplit("prefix=", 1)[1]
    audit = tmp_path / "audit" / "audit.jsonl"
    audit.parent.mkdir()
    with _gateway(store, confdir, tmp_path, audit) as g, Admin(g.admin, TOKEN) as admin:
        # the registry is in the cluster too: this sandbox is every worker's
        admin.create("c-1", client_address="127.0.0.1")
        g.traffic_until_both_served(at_least=20)  # Stripe customers, created by both
        with g.session() as s:
            listed = s.get(f"{API}/customers?limit=100", timeout=30,
                           headers={"Authorization": "Bearer sk_test_gateway"}).json()
        created = sum(1 for flows in g.audited().values() for e in flows
                      if e["rule"] == "stripe.customers.create")
        assert len(listed["data"]) == created
        fork = admin.fork("c-1", "c-2")  # a fork: one script over the world and its layers
        assert fork.world["counts"]["stripe.customers"] == created
        events = admin.events("c-1", limit=200)
        assert Counter(e.get("worker") for e in events if e["kind"] == "flow") == Counter(
            {w: len(f) for w, f in g.audited().items()})
        # the console saw both workers' flows (pub/sub across the cluster's nodes)
        want = Counter({w: len(f) for w, f in g.audited().items()})
        _until(lambda: Counter(r["worker"] for r in g.console("flows?limit=1000")["flows"])
               == want, "the console did not list both workers' flows")
        assert _requests_total(g.scrape()) == _audited_total(g.audited())
    slots, nodes = _slots_and_nodes(redis_cluster, prefix)
    assert len(slots) == 1 and len(nodes) == 1  # every key of the store in one slot


def test_stores_with_other_hash_tags_spread_over_the_nodes(
        redis_cluster: RedisClusterServers) -> None:
    stores = [RedisStore(redis_cluster.prefixed()) for _ in range(12)]
    try:
        for store in stores:
            store.world("s").put("things", {"id": "t"})
        nodes = {n for store in stores
                 for n in _slots_and_nodes(redis_cluster, store.prefix)[1]}
        assert len(nodes) > 1  # 12 random tags on 3 nodes: all on one has odds 3 / 3**12
    finally:
        for store in stores:
            store.close()
