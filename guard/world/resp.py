"""The event loop's Redis client for a request's round trips: RESP over asyncio
connections, replies parsed by hiredis.

A simulated request on Redis sends two or three commands (the registry's version, its
commit script, its live-feed event). redis-py's asyncio client spends far more CPU on each
than Redis does (a pool checkout under a lock, a retry wrapper, a timeout scope per read):
a GET on loopback cost it 80 µs of CPU one at a time and 59 µs with 8 in flight, this
client 50 and 29 µs (the kernel's share of a round trip included). This client
writes a command in one ``write`` on a connection kept open for the next one and reads
its reply with hiredis. Each command in flight has a connection of its own, so one that
Redis or the network holds up delays no other request. It is for plain ``redis://`` and
``unix://`` URLs of a single Redis; TLS and Cluster stores keep redis-py's client (see
:meth:`guard.world.redis.RedisStore._run_async`).

A Redis that does not answer within the timeout (the URL's ``socket_timeout``, or the
store's) counts as down: the connection is dropped and its command fails with
:class:`redis.TimeoutError`. A lost connection fails its command with
:class:`redis.ConnectionError`, error replies raise :class:`redis.ResponseError`: callers
map failures as they do redis-py's.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from typing import Any, cast

import hiredis
import redis as redis_py
from redis.connection import UnixDomainSocketConnection, parse_url

IDLE = 32  # connections kept open for the next commands (more are closed after use)


def usable(url: str) -> bool:
    """Whether this client can serve ``url`` (plain TCP or a Unix socket, no TLS)."""
    return url.startswith(("redis://", "unix://"))


def encode(args: tuple[Any, ...]) -> bytes:
    """One command in RESP: an array of bulk strings, packed by hiredis (a third of the
    CPU of doing it here). bytes, str, int and float as redis-py encodes them; anything
    else (a bool, None) is a caller's bug, refused as redis-py refuses it."""
    try:
        return cast(bytes, hiredis.pack_command(args))
    except TypeError as e:
        raise redis_py.DataError(f"invalid input: {e}") from None


class _Protocol(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop, self.timeout = loop, timeout
        self.reader = hiredis.Reader(encoding="utf-8")
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, data: bytes) -> asyncio.Future[Any]:
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            raise redis_py.ConnectionError(f"the connection to Redis is closed: {self.lost}")
        future = self.loop.create_future()
        self.transport.write(data)
        self.waiting.append((future, time.monotonic()))
        if self._timer is None:
            self._timer = self.loop.call_later(self.timeout, self._check)
        return future

    def data_received(self, data: bytes) -> None:
        try:
            self.reader.feed(data)
            while True:
                reply = self.reader.gets()
                if reply is False:
                    break
                future, _ = self.waiting.popleft()
                if future.done():  # its caller stopped waiting; the reply is still its own
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(redis_py.ResponseError(str(reply)))
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, UnicodeDecodeError, IndexError) as e:
            self._fail(redis_py.ConnectionError(f"unreadable reply from Redis: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis_py.ConnectionError(
            f"the connection to Redis was lost{': ' + str(exc) if exc else ''}"))

    def _check(self) -> None:
        self._timer = None
        if not self.waiting:
            return
        due = self.waiting[0][1] + self.timeout
        now = time.monotonic()
        if now >= due:
            self._fail(redis_py.TimeoutError(f"Redis did not answer in {self.timeout:g} s"))
        else:
            self._timer = self.loop.call_later(due - now, self._check)

    def _fail(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class Client:
    """Commands to one Redis from one event loop. Each command in flight has a connection
    of its own (made when none is idle, kept for the next one), so a command Redis or the
    network holds up delays no other sandbox's request."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._kw: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        # the URL's own timeouts first, as redis-py's client takes them
        self.timeout = float(self._kw.get("socket_timeout") or timeout)
        self.connect_timeout = float(self._kw.get("socket_connect_timeout") or timeout)
        self._idle: list[_Protocol] = []
        self._shas: dict[str, str] = {}

    async def execute(self, *args: Any) -> Any:
        data = encode(args)
        conn = None
        while self._idle:
            conn = self._idle.pop()
            if conn.lost is None:
                break
            conn = None
        if conn is None:
            conn = await self._connect()
        try:
            reply = await conn.send(data)
        except asyncio.CancelledError:  # its reply would come to the next command
            conn._fail(redis_py.ConnectionError("the command was cancelled"))
            raise
        if conn.lost is None and len(self._idle) < IDLE:
            self._idle.append(conn)
        return reply

    async def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, or EVAL the first time this Redis lacks the script."""
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = hashlib.sha1(source.encode()).hexdigest()
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except redis_py.ResponseError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
        return await self.execute("EVAL", source, len(keys), *keys, *args)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(self._open(loop), self.connect_timeout)
        except TimeoutError as e:
            raise redis_py.TimeoutError(
                f"no connection to Redis in {self.connect_timeout:g} s") from e
        except OSError as e:
            raise redis_py.ConnectionError(f"cannot connect to Redis: {e}") from e

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        kw = self._kw

        def protocol() -> _Protocol:
            return _Protocol(loop, self.timeout)

        if kw.get("connection_class") is UnixDomainSocketConnection:
            _, conn = await loop.create_unix_connection(protocol, kw["path"])
        else:
            _, conn = await loop.create_connection(protocol, kw.get("host", "localhost"),
                                                   kw.get("port", 6379))
        setup = []
        if kw.get("password") is not None:
            auth = ("AUTH", kw["username"], kw["password"]) if kw.get("username") else (
                "AUTH", kw["password"])
            setup.append(conn.send(encode(auth)))
        if kw.get("db"):
            setup.append(conn.send(encode(("SELECT", kw["db"]))))
        try:
            for step in setup:
                await step
        except BaseException:
            conn._fail(redis_py.ConnectionError("Redis refused the connection's setup"))
            raise
        return conn

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn._fail(redis_py.ConnectionError("closed"))
            except RuntimeError:  # its loop is closed already: so is the socket
                pass
