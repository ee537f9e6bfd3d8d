"""Worker 0's console reads the other workers' flows from the sandboxes' live feeds in a
real Redis (guard.console.remote): only its own gateway's, never its own twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from guard.console.flows import Filters, FlowLog
from guard.console.remote import RemoteFlows
from guard.errors import WorldError
from guard.gateway import Seat
from guard.internal_host import publish
from guard.world.redis import RedisStore
from tests.redis_server import RedisServer


def _event(seq: int, sandbox: str, kind: str = "flow", **more: Any) -> dict[str, Any]:
    return {"kind": kind, "seq": seq, "sandbox": sandbox, "action": "simulate",
            "rule": "stripe.customers.create", "host": "api.stripe.com",
            "method": "POST", "url": "https://api.stripe.com/v1/customers", **more}


async def _fed(flows: FlowLog, n: int) -> None:
    while len(flows.flows) < n:
        await asyncio.sleep(0.05)


def test_the_console_gets_the_other_workers_flows_of_its_gateway_only(
        redis_server: RedisServer) -> None:
    url = redis_server.prefixed()
    zero, one, other = RedisStore(url), RedisStore(url), RedisStore(url)
    flows = FlowLog(worker=0)
    mine, theirs = Seat(0, "gw-a"), Seat(1, "gw-a")
    stranger = Seat(1, "gw-b")  # another gateway's worker 1, sharing the Redis

    async def scenario() -> None:
        remote = RemoteFlows(zero, flows, mine)
        task = asyncio.create_task(remote.run())
        while not zero._call(lambda r: r.pubsub_numsub(zero.prefix + "events"))[0][1]:
            await asyncio.sleep(0.05)  # subscribed: events before that are not announced
        local = _event(1, "s1")
        flows.observe(local)  # worker 0's own flow reaches its console from its recorder
        publish(zero, local, mine.mark())  # and goes to the feed, announced to itself too
        # worker 1: an allowed flow is two events with seqs of its own chain (its seq 1
        # is not worker 0's seq 1), then a simulated one in another sandbox
        publish(one, _event(1, "s1", kind="request", action="allow"), theirs.mark())
        publish(one, _event(2, "s1", request_seq=1, action="allow", status=200),
                theirs.mark())
        publish(one, _event(3, "s2", request={"body": {"text": "x" * 5000, "size": 5000}}),
                theirs.mark())
        publish(other, _event(1, "s1"), stranger.mark())
        publish(other, _event(2, "s3"), None)  # a replica that is no gateway's worker
        publish(one, {"kind": "flow", "seq": 4, "rule": "guard.sandbox-missing"},
                theirs.mark())  # no sandbox: in no feed
        await asyncio.wait_for(_fed(flows, 3), 30)
        # announced after all the others (one subscription keeps their order), read from
        # s1's last: once it is here, whatever else would have come has come
        publish(one, _event(5, "s1"), theirs.mark())
        await asyncio.wait_for(_fed(flows, 4), 30)
        task.cancel()

    try:
        asyncio.run(scenario())
    finally:
        for store in (zero, one, other):
            store.close()
    rows = flows.rows(Filters(), limit=100)
    got = sorted((r["worker"], r["sandbox"], r["action"], r["pending"]) for r in rows)
    assert got == [(0, "s1", "simulate", False), (1, "s1", "allow", False),
                   (1, "s1", "simulate", False), (1, "s2", "simulate", False)]
    allowed = next(f for f in flows.flows.values() if f["action"] == "allow")
    assert allowed["status"] == 200  # the request and its end, paired into one flow
    big = next(f for f in flows.flows.values() if f["sandbox"] == "s2")
    assert big["request"]["body"]["truncated"] is True  # as the live feed keeps it
    assert "gateway" not in big
    assert flows.rule_hits()["stripe.customers.create"][0] == 4  # both workers' hits


def test_after_a_redis_restart_the_console_gets_the_other_workers_flows_again(
        tmp_path: Path) -> None:
    server = RedisServer(tmp_path, persist=True).start()  # its own: this one is restarted
    url = server.prefixed()
    zero, one = RedisStore(url), RedisStore(url)
    flows = FlowLog(worker=0)
    mine, theirs = Seat(0, "gw-r"), Seat(1, "gw-r")

    async def subscribed() -> None:
        while True:
            try:
                if zero._call(lambda r: r.pubsub_numsub(zero.prefix + "events"))[0][1]:
                    return
            except WorldError:
                pass  # Redis still starting
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        task = asyncio.create_task(RemoteFlows(zero, flows, mine).run())
        await subscribed()
        publish(one, _event(1, "s1"), theirs.mark())
        await asyncio.wait_for(_fed(flows, 1), 30)
        await asyncio.to_thread(server.restart)  # the subscription drops; the feeds stay
        publish(one, _event(2, "s1"), theirs.mark())  # while nobody listens: not announced
        await subscribed()  # the console's listener is back
        publish(one, _event(3, "s1"), theirs.mark())  # announced: read after s1's last
        await asyncio.wait_for(_fed(flows, 3), 30)
        task.cancel()

    try:
        asyncio.run(scenario())
    finally:
        zero.close()
        one.close()
        server.stop()
    assert [f["seq"] for f in flows.flows.values()] == [1, 2, 3]  # the missed one too
