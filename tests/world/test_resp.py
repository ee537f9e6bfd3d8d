"""guard.world.resp, the event loop's Redis client for requests, against a real
redis-server: replies, errors, scripts, credentials and database, a held command, a lost
connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from guard.world import resp
from tests.redis_relay import RedisRelay
from tests.redis_server import RedisServer, answers


@pytest.fixture
def relay(redis_server: RedisServer) -> Iterator[RedisRelay]:
    r = RedisRelay(redis_server.port)
    yield r
    r.close()


def test_replies_come_back_as_redis_py_decodes_them(redis_server: RedisServer) -> None:
    async def main() -> list[object]:
        c = resp.Client(redis_server.url, 5)
        key = redis_server.prefixed().rsplit("=", 1)[1] + "k"
        try:
            return [await c.execute("SET", key, "gr\u00fc\u00dfe \u2603"),
                    await c.execute("GET", key), await c.execute("GET", key + "none"),
                    await c.execute("INCRBY", key + "n", 41),
                    await c.execute("RPUSH", key + "l", "a", b"b", 3, 1.5),
                    await c.execute("LRANGE", key + "l", 0, -1)]
        finally:
            c.close()

    assert asyncio.run(main()) == ["OK", "gr\u00fc\u00dfe \u2603", None, 41, 4,
                                   ["a", "b", "3", "1.5"]]


def test_an_error_reply_raises_response_error_and_the_connection_stays_usable(
        redis_server: RedisServer) -> None:
    async def main() -> object:
        c = resp.Client(redis_server.url, 5)
        try:
            with pytest.raises(redis.ResponseError, match="unknown command"):
                await c.execute("NO-SUCH-COMMAND")
            return await c.execute("PING")
        finally:
            c.close()

    assert asyncio.run(main()) == "PONG"


def test_a_script_redis_lacks_is_sent_whole_once_then_by_its_digest(
        redis_server: RedisServer) -> None:
    source = "return {ARGV[1], #KEYS, 'script-' .. ARGV[2]}"
    plain = redis.Redis(port=redis_server.port)
    plain.script_flush()
    plain.config_resetstat()

    async def main() -> list[object]:
        c = resp.Client(redis_server.url, 5)
        try:
            return [await c.script(source, ["k1"], ["x", i]) for i in range(3)]
        finally:
            c.close()

    assert asyncio.run(main()) == [["x", 1, f"script-{i}"] for i in range(3)]
    stats = plain.info("commandstats")
    assert stats["cmdstat_eval"]["calls"] == 1  # after the first EVALSHA's NOSCRIPT
    assert stats["cmdstat_evalsha"]["calls"] == 3
    plain.close()


def test_credentials_and_the_database_of_the_url_are_used(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    admin = redis.Redis(port=server.port, decode_responses=True)
    try:
        admin.execute_command("ACL", "SETUSER", "guard", "on", ">s3cret", "~*", "+@all")
        admin.config_set("requirepass", "other")  # the default user needs a password now
        admin.auth("other")

        async def main(url: str) -> object:
            c = resp.Client(url, 5)
            try:
                return await c.execute("SET", "where", "db 3")
            finally:
                c.close()

        assert asyncio.run(main(f"redis://guard:s3cret@127.0.0.1:{server.port}/3")) == "OK"
        admin.select(3)
        assert admin.get("where") == "db 3"
        with pytest.raises(redis.ResponseError):  # a wrong password: refused, not hidden
            asyncio.run(main(f"redis://guard:wrong@127.0.0.1:{server.port}/3"))
    finally:
        admin.close()
        server.stop()


def test_a_held_command_delays_no_other_command_and_times_out_alone(
        relay: RedisRelay) -> None:
    async def main() -> tuple[object, BaseException | None]:
        c = resp.Client(relay.url("?socket_timeout=1"), 60)  # the URL's timeout wins
        try:
            await c.execute("SET", "warm", "1")  # one idle connection now
            relay.hold(b"held-marker")
            held = asyncio.ensure_future(c.execute("GET", "held-marker"))
            await asyncio.sleep(0.1)
            other = await c.execute("PING")  # a connection of its own: not behind it
            error = None
            try:
                await held
            except redis.TimeoutError as e:
                error = e
            return other, error
        finally:
            relay.release()
            c.close()

    other, error = asyncio.run(main())
    assert other == "PONG"
    assert error is not None and "did not answer in 1 s" in str(error)


def test_connections_redis_closed_meanwhile_are_not_reused(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()

    async def main() -> object:
        c = resp.Client(server.url, 5)
        try:
            await c.execute("PING")
            server.restart()  # the idle connection is closed by the old server
            await asyncio.sleep(0.2)  # the loop sees it go
            return await c.execute("PING")
        finally:
            c.close()

    try:
        assert asyncio.run(main()) == "PONG"
    finally:
        server.stop()


def test_a_command_whose_connection_is_lost_fails_and_is_not_sent_again(
        redis_server: RedisServer) -> None:
    relay = RedisRelay(redis_server.port)
    key = redis_server.prefixed().rsplit("=", 1)[1] + "counter"

    async def main() -> BaseException | None:
        c = resp.Client(relay.url(), 5)
        try:
            relay.hold(b"INCR")
            held = asyncio.ensure_future(c.execute("INCR", key))
            await asyncio.sleep(0.1)
            relay.cut()  # every connection through the relay dies, the command unsent
            try:
                await held
            except redis.ConnectionError as e:
                return e
            return None
        finally:
            c.close()
            relay.close()

    error = asyncio.run(main())
    assert error is not None and "lost" in str(error)
    plain = redis.Redis(port=redis_server.port)
    assert plain.get(key) is None  # not resent: a commit must never run twice
    plain.close()


def test_no_redis_at_all_is_a_connection_error(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    url = server.url
    server.stop()

    async def main() -> None:
        c = resp.Client(url, 5)
        await c.execute("PING")

    with pytest.raises(redis.ConnectionError, match="cannot connect"):
        asyncio.run(main())


def test_only_plain_single_redis_urls_are_served() -> None:
    assert resp.usable("redis://127.0.0.1:6379/0")
    assert resp.usable("unix:///run/redis.sock?db=2")
    assert not resp.usable("rediss://redis.example:6380/0")  # TLS: redis-py's client


def test_arguments_are_encoded_as_redis_py_encodes_them() -> None:
    assert resp.encode(("SET", "k", b"\x00\xff", 7, 0.5)) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00\xff\r\n$1\r\n7\r\n$3\r\n0.5\r\n")
    with pytest.raises(redis.DataError):
        resp.encode(("SET", "k", True))
    with pytest.raises(redis.DataError):
        resp.encode(("SET", "k", None))


def test_a_store_at_a_unix_socket_url_keeps_its_socket_path_and_parameters(
        tmp_path: Path) -> None:
    """``unix:///path?prefix=...&db=N``: the store's own parameters are taken out of the
    URL without losing its empty host (urlunsplit alone turns it into ``unix:/path``,
    which redis-py refuses), and both clients (redis-py's, and the loop's) use it."""
    import shutil
    import subprocess

    from guard.world import bridge
    from guard.world.redis import RedisStore

    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", "0",
                             "--unixsocket", str(sock), "--save", "", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        plain = redis.Redis(unix_socket_path=str(sock), db=2, decode_responses=True)
        assert answers(plain, proc), "redis-server did not start on its Unix socket"
        store = RedisStore(f"unix://{sock}?db=2&prefix=u1:")
        try:
            assert store.prefix == "u1:" and f"unix:{sock}" in store.describe()
            store.world("a").put("things", {"id": "t1", "n": 1})

            async def from_the_loop() -> object:
                return await bridge.run(lambda: store.world("a").get("things", "t1"))

            assert asyncio.run(from_the_loop()) == {"id": "t1", "n": 1}
            assert any(k.startswith("u1:") for k in plain.keys("*"))  # db 2, prefixed
        finally:
            store.close()
            plain.close()
    finally:
        proc.terminate()
        proc.wait(10)
