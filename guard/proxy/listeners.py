"""One accept queue per listening address for all of ``guard run --workers N``.

The supervisor binds every TCP listener the workers serve (the proxy's modes and the
SMTP sink) once, before it starts them, and passes the sockets down (``GUARD_LISTEN_FDS``,
the inherited file descriptors by address). Every worker accepts from them, each waiting
in the kernel's queue in turn (:class:`Shared`), so new connections go round the workers
evenly.

Why not ``SO_REUSEPORT`` (guard's first design): it gives every worker a queue of its own
and the kernel hashes each new connection to one of them, blind to load. Keep-alive
connections stay where the hash put them, so 8 clients split 5:3 or 6:2 and the busier
worker's core is the gateway's limit (``bench/world.py`` measured ``--workers 2`` at 1.15x
one worker while two separate processes sharing the same 8 connections evenly did 1.74x);
a stalled worker strands the connections hashed to it, and a dying one resets those waiting
in its queue. With one shared queue a stalled or dead worker's share goes to the others,
and nothing waiting is lost (the supervisor holds the socket while it starts a new worker).

A listener the supervisor did not open (none today; a mode added at run time) still binds
with ``SO_REUSEPORT`` as before, so it is served on one port too.

    >>> encode({("127.0.0.1", 8080): [5]})
    '{"listeners": [["127.0.0.1", 8080, [5]]]}'
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import mmap
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

LISTEN_ENV = "GUARD_LISTEN_FDS"
# How long a busier worker leaves a new connection to a lighter one: long enough for a
# worker waiting for a core on a loaded machine (5 ms lost turns under a test suite), short
# beside a TLS handshake; a stalled lighter worker costs each new connection this much.
DEFER = 0.02
RETRY_DELAY = 1.0  # out of file descriptors: stop accepting for this long (as asyncio does)
STREAM_LIMIT = 2**16  # asyncio.start_server's default StreamReader limit

logger = logging.getLogger(__name__)

Address = tuple[str, int]
Callback = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


def proxy_addresses(modes: Iterable[str], listen_host: str, listen_port: int) -> list[Address]:
    """Where mitmproxy's TCP servers for ``modes`` will listen (``regular`` at the
    defaults, ``reverse:...@12111`` at its own port), as its ``ServerInstance`` computes it.

    >>> proxy_addresses(["regular", "reverse:https://api.stripe.com@12111"], "127.0.0.1", 8080)
    [('127.0.0.1', 8080), ('127.0.0.1', 12111)]
    """
    from mitmproxy.proxy.mode_specs import ProxyMode

    out = []
    for spec in modes:
        mode = ProxyMode.parse(spec)
        port = mode.listen_port(listen_port)
        if port is not None and mode.transport_protocol in ("tcp", "both"):
            out.append((mode.listen_host(listen_host), port))
    return out


def bind(address: Address, backlog: int = socket.SOMAXCONN) -> list[socket.socket]:
    """Listening sockets for ``address`` as ``asyncio.start_server(host, port)`` would bind
    them: every address the host resolves to (``""``: all of this machine's, IPv4 and
    IPv6), ``SO_REUSEADDR``, IPv6 sockets v6-only. Raises ``OSError`` naming the address."""
    host, port = address
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, where in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(where)
            except OSError as e:
                raise OSError(e.errno, f"cannot listen on {host or '*'}:{port}: "
                                       f"{e.strerror}") from e
            sock.listen(backlog)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def encode(table: Mapping[Address, Iterable[int]], load: Load | None = None) -> str:
    """The environment value that hands ``table`` (address -> descriptors) and the
    connection counts to a worker."""
    return json.dumps({"listeners": [[host, port, list(fds)] for (host, port), fds in
                                     table.items()],
                       **({"load": load.fd, "workers": load.workers} if load else {})})


def decode(value: str) -> tuple[dict[Address, list[socket.socket]], Load | None]:
    """The sockets a worker inherited, by the address they were bound for, and the
    connection counts."""
    doc = json.loads(value)
    table = {(str(host), int(port)): [socket.socket(fileno=int(fd)) for fd in fds]
             for host, port, fds in doc["listeners"]}
    load = Load(int(doc["load"]), int(doc["workers"])) if "load" in doc else None
    return table, load


def install(index: int, env: Mapping[str, str] = os.environ) -> None:
    """In worker ``index``: ``asyncio.start_server`` for an inherited address serves the
    shared queue (:class:`Shared`); any other TCP server binds with ``SO_REUSEPORT``.
    mitmproxy 12 and the SMTP sink both call ``asyncio.start_server``; a worker is a process
    of its own, so this changes nothing outside it."""
    original = asyncio.start_server
    if getattr(original, "guard_shared", False):
        return
    inherited, load = decode(env[LISTEN_ENV]) if env.get(LISTEN_ENV) else ({}, None)
    seat = (load, index) if load is not None else None

    async def start_server(client_connected_cb: Callback, host: Any = None,
                           port: Any = None, **kwargs: Any) -> asyncio.Server:
        socks = inherited.get((host or "", port)) if isinstance(port, int) else None
        if socks is None:
            kwargs.setdefault("reuse_port", True)
            return await original(client_connected_cb, host, port, **kwargs)
        shared = Shared(client_connected_cb, [s.dup() for s in socks], seat, **kwargs)
        # Closing (a drain) lets go of this process's inherited copies too, so the port
        # stops listening once the supervisor and every worker have let go.
        def let_go(key: Address = (host or "", port)) -> None:
            for sock in inherited.pop(key, []):
                sock.close()
        shared.on_close = let_go
        return shared  # type: ignore[return-value]  # asyncio.Server's shape, see Shared

    start_server.guard_shared = True  # type: ignore[attr-defined]
    asyncio.start_server = start_server


class Load:
    """Open connections per worker, in memory that the supervisor and every worker map (a
    ``memfd`` the supervisor made and passed down): worker ``i`` writes only slot ``i``
    (the supervisor writes it while no worker ``i`` runs: zero before one starts, ``DEAD``
    after it exits), and everyone reads all of them."""

    DEAD = 2**31 - 1

    def __init__(self, fd: int, workers: int) -> None:
        self.fd, self.workers = fd, workers
        self._map = mmap.mmap(fd, 4 * workers)
        self.slots = memoryview(self._map).cast("i")

    @classmethod
    def make(cls, workers: int) -> Load:
        fd = os.memfd_create("guard-load", 0)  # inheritable: handed to the workers
        os.ftruncate(fd, 4 * workers)
        load = cls(fd, workers)
        for i in range(workers):
            load.slots[i] = cls.DEAD
        return load

    def lighter(self, index: int) -> bool:
        """Whether a live worker other than ``index`` has fewer connections open."""
        mine = self.slots[index]
        return any(n < mine for i, n in enumerate(self.slots) if i != index)


class Shared:
    """Serves sockets whose accept queue the other workers share, in the shape of the
    ``asyncio.Server`` that ``start_server`` returns (``sockets``, ``close``,
    ``wait_closed``, ``is_serving``), connections built as ``start_server`` builds them.

    A waiting connection wakes every worker's loop. Each takes at most one per wake-up
    (asyncio's own server takes up to its backlog at once, emptying the queue into whoever
    ran first), and a worker with more connections open than another live worker (``Load``)
    first leaves it ``DEFER`` seconds for that one, then takes it if it is still waiting
    (the other may be stalled). So keep-alive connections spread evenly, which neither a
    race to ``accept`` nor ``SO_REUSEPORT``'s hash does. Closing stops this worker
    accepting and leaves the queue to the others."""

    def __init__(self, callback: Callback, socks: list[socket.socket],
                 load: tuple[Load, int] | None = None, *, limit: int = STREAM_LIMIT,
                 ssl: Any = None, ssl_handshake_timeout: float | None = None,
                 **unsupported: Any) -> None:
        if unsupported:
            raise TypeError(f"shared listeners do not take {sorted(unsupported)}")
        self.callback, self.limit, self.ssl, self.load = callback, limit, ssl, load
        self.handshake = ({"ssl_handshake_timeout": ssl_handshake_timeout}
                          if ssl is not None and ssl_handshake_timeout is not None else {})
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_close: Callable[[], None] = lambda: None
        self._sockets: list[socket.socket] | None = socks
        if load is not None and load[0].slots[load[1]] == Load.DEAD:
            # Counted in from its first server on: a worker still starting is never the
            # lighter one (the others would leave it connections it cannot take yet).
            load[0].slots[load[1]] = 0
        for sock in socks:
            sock.setblocking(False)
            self.loop.add_reader(sock.fileno(), self._ready, sock)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets or ())

    def is_serving(self) -> bool:
        return self._sockets is not None

    def close(self) -> None:
        """Stop accepting here (the connections this worker serves go on)."""
        for sock in self._sockets or ():
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = None
        self.on_close()

    async def wait_closed(self) -> None:
        """Nothing to wait for: the connections belong to their callbacks' owners."""

    def _ready(self, sock: socket.socket) -> None:
        if self.load is not None and self.load[0].lighter(self.load[1]):
            self.loop.remove_reader(sock.fileno())  # readable until someone accepts
            self.loop.call_later(DEFER, self._deferred, sock)
            return
        self._accept(sock)

    def _deferred(self, sock: socket.socket) -> None:
        if self._sockets is None or sock not in self._sockets:
            return
        self._accept(sock)  # still waiting: the lighter worker did not come for it
        if self._sockets is not None and sock in self._sockets:
            self.loop.add_reader(sock.fileno(), self._ready, sock)

    def _accept(self, sock: socket.socket) -> None:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it
        except OSError as e:
            if e.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
            # The socket stays readable while the connection waits: step out of the queue
            # for a while (as asyncio does) rather than spin; the other workers take it.
            logger.warning("guard: cannot accept a connection (%s); pausing %.0f s",
                           e.strerror, RETRY_DELAY)
            self.loop.remove_reader(sock.fileno())
            self.loop.call_later(RETRY_DELAY, self._resume, sock)
            return
        conn.setblocking(False)
        # counted from now (not from when it is set up), so the next wake-up sees it
        seat = _Seat(*self.load) if self.load is not None else None
        task = self.loop.create_task(self._connect(conn, seat))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _resume(self, sock: socket.socket) -> None:
        if self._sockets is not None and sock in self._sockets:
            self.loop.add_reader(sock.fileno(), self._ready, sock)

    def _protocol(self, seat: _Seat | None) -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=self.limit, loop=self.loop)
        if seat is None:
            return asyncio.StreamReaderProtocol(reader, self.callback, loop=self.loop)
        return _Counted(reader, self.callback, seat, loop=self.loop)

    async def _connect(self, conn: socket.socket, seat: _Seat | None) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: self._protocol(seat), conn,
                                                    ssl=self.ssl, **self.handshake)
        except OSError as e:  # a TLS handshake that failed, a client gone already
            logger.debug("guard: connection dropped before it was served: %r", e)
            conn.close()
            if seat is not None:
                seat.leave()


class _Seat:
    """One open connection in its worker's slot of ``Load``: taken at accept, left once."""

    __slots__ = ("load", "index", "taken")

    def __init__(self, load: Load, index: int) -> None:
        self.load, self.index, self.taken = load, index, True
        load.slots[index] += 1

    def leave(self) -> None:
        if self.taken:
            self.taken = False
            self.load.slots[self.index] -= 1


class _Counted(asyncio.StreamReaderProtocol):
    """A connection that leaves its seat in ``Load`` when it closes."""

    def __init__(self, reader: asyncio.StreamReader, callback: Callback, seat: _Seat,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(reader, callback, loop=loop)
        self._seat = seat

    def connection_lost(self, exc: Exception | None) -> None:
        self._seat.leave()
        super().connection_lost(exc)
