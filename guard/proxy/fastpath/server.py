"""The fast path's connections: the first bytes of every connection to a regular-mode
listener are read here. A ``CONNECT`` to a host that no rule of any loaded rule set
allows is served here (TLS by Python's ``ssl``, HTTP/1.1 or HTTP/2 read and written
here, every request answered by :class:`~guard.proxy.fastpath.exchange.Exchange`);
everything else (plain HTTP, CONNECT to an address, to an allowed host, or anything
that does not parse) is handed to mitmproxy untouched, with the bytes already read put
back in front of the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mitmproxy.certs import CertStore
from mitmproxy.net.http import url

from guard import internal_host
from guard.decision import Action
from guard.net import egress
from guard.packs import Packs
from guard.proxy.fastpath import http1
from guard.proxy.fastpath.exchange import Answer, Exchange, Tunnel
from guard.proxy.fastpath.tls import Contexts

if TYPE_CHECKING:
    from guard.proxy.addons.limits import Limits

log = logging.getLogger("guard")

HEAD_LIMIT = 16 * 1024  # a CONNECT head longer than this goes to mitmproxy
HANDSHAKE_TIMEOUT = 30.0
# How long a connection guard closes waits for the client's TLS close_notify (asyncio's
# default, 30 s, kept a closed connection open that long: a client that never answers,
# such as a pooled connection nobody reads, held its slot in the --workers accept queue's
# count, and its descriptor, for 30 s more than through mitmproxy, which closes at once).
# Not needed by TLS (RFC 8446, 6.1); the answers were drained before the close.
SHUTDOWN_TIMEOUT = 2.0
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"

Handler = Callable[..., Awaitable[None]]


def allows_any(packs: Packs, host: str) -> bool:
    """Whether any rule of ``packs`` that applies to ``host`` allows (or could: every rule
    that is not simulate or block counts)."""
    return any(rule.action not in (Action.SIMULATE, Action.BLOCK)
               for rule in packs.engine.candidates(host))


class FastPath:
    """Serves CONNECT tunnels to simulated hosts; ``served`` counts them (for tests)."""

    def __init__(self, exchange: Exchange, certstore: Callable[[], CertStore],
                 http2: bool = True, limits: Limits | None = None,
                 idle_timeout: float = 300.0) -> None:
        self.exchange = exchange
        # --max-client-connections and --header-timeout hold here as through mitmproxy:
        # every connection counts against its address from the start (one over the limit
        # is handed to mitmproxy, which refuses it); a head must arrive within
        # header_timeout of opening and of the last answer; --idle-timeout while a body
        # is read
        self.limits = limits
        self.header_timeout = limits.header_timeout if limits is not None else 30.0
        self.idle_timeout = idle_timeout
        self._certstore = certstore
        self._contexts: Contexts | None = None
        self.alpn = ("h2", "http/1.1") if http2 else ("http/1.1",)
        self.served = 0
        self._eligible: dict[str, bool] = {}
        self._eligible_of: tuple[int, int] | None = None
        self.keep: Callable[[], None] | None = None  # what must live as long as this

    def eligible(self, host: str) -> bool:
        """A name (not an address, not guard.internal) that no rule of the running packs or
        of the sandbox policies' packs allows. Cached per host until a reload."""
        ctx = self.exchange.policy.ctx
        key = (id(ctx.packs), id(ctx.policies.extra))
        if key != self._eligible_of:
            self._eligible, self._eligible_of = {}, key
        found = self._eligible.get(host)
        if found is None:
            found = not _is_ip(host) and host != internal_host.HOST and not any(
                allows_any(p, host) for p in (ctx.packs, ctx.policies.extra))
            if len(self._eligible) >= 4096:
                self._eligible.clear()
            self._eligible[host] = found
        return found

    def wrap(self, original: Handler) -> Handler:
        """A listener's connection handler that takes the tunnels it serves and hands
        every other connection to ``original`` (mitmproxy's)."""

        async def handle_stream(reader: Any, writer: Any = None) -> None:
            if not isinstance(reader, asyncio.StreamReader) or \
                    not isinstance(writer, asyncio.StreamWriter):
                await original(reader, writer)
                return
            limits = self.limits
            peer = writer.get_extra_info("peername")
            address = str(peer[0]) if peer else ""
            if limits is not None and not limits.hold(address):
                await original(reader, writer)  # over the limit: mitmproxy refuses it
                return
            rest: bytes | None = None
            try:
                rest = await self._take(reader, writer, address)
            except asyncio.CancelledError:  # shutting down: asyncio (3.12.1) would log
                writer.close()  # a cancelled connection task as an error
                return
            except Exception:
                log.exception("guard: fast path failed on a connection")
                writer.close()
                return
            finally:
                if rest is None and limits is not None:  # served here, and closed
                    limits.release(address)
            if rest is not None:
                await self._hand_over(original, reader, writer, rest, address)

        return handle_stream

    async def _hand_over(self, original: Handler, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, data: bytes, address: str) -> None:
        """Give a connection to mitmproxy with the bytes already read back in front of its
        stream. The count :meth:`Limits.hold` took at its accept passes to mitmproxy's
        client_connected as it is (a connection is counted once, from accept to close)."""
        _put_back(reader, data)
        stream = HandedOver(reader)
        if self.limits is None:
            await original(stream, writer)
            return
        key = self.limits.hand_over(writer.get_extra_info("peername"),
                                    writer.get_extra_info("sockname"), address)
        try:
            await original(stream, writer)
        finally:
            self.limits.handed_back(key)

    async def _take(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    address: str) -> bytes | None:
        """Serve the connection if it is a tunnel for the fast path (None: served, and
        closed); else the bytes read of it, to hand it to mitmproxy with."""
        data = b""
        try:
            async with asyncio.timeout(self.header_timeout):
                while b"\r\n\r\n" not in data and len(data) < HEAD_LIMIT:
                    chunk = await reader.read(HEAD_LIMIT)
                    if not chunk:
                        break
                    data += chunk
                    if not b"CONNECT ".startswith(data[:8]):
                        break
        except TimeoutError:  # silent, or half a CONNECT head: closed (and audited)
            if self.limits is not None:
                answer = self.limits.head_timed_out(address, writer.get_extra_info("sockname"),
                                                    partial=bool(data))
                if answer:
                    writer.write(answer)
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
            writer.close()
            return None
        tunnel = self._tunnel(data, writer)
        if tunnel is None:
            return data
        writer.write(ESTABLISHED)
        await writer.drain()
        self.served += 1
        await self._serve(reader, writer, tunnel)
        return None

    def _tunnel(self, data: bytes, writer: asyncio.StreamWriter) -> Tunnel | None:
        """The tunnel a complete CONNECT head (and nothing after it) asks for, if this
        path serves it."""
        end = data.find(b"\r\n\r\n")
        if not data.startswith(b"CONNECT ") or end == -1 or end + 4 != len(data):
            return None
        try:
            head = http1.parse_head(data)
            host, port = url.parse_authority(head.target, check=True)
        except (http1.BadRequest, ValueError):
            return None
        if port is None or head.version != "HTTP/1.1":
            return None
        if self.exchange.limits.check(url_bytes=len(head.target), header_bytes=len(data)):
            return None  # mitmproxy's path refuses and audits an oversize CONNECT
        host = egress.normal_name(host)
        if not self.eligible(host):
            return None
        peer = writer.get_extra_info("peername")
        return Tunnel(client=str(peer[0]) if peer else "", connect_host=host, port=port,
                      proxy_auth=head.get("proxy-authorization") or "", sni=None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     tunnel: Tunnel) -> None:
        if self._contexts is None:
            self._contexts = Contexts(self._certstore(), self.alpn)
        sock = writer.get_extra_info("sockname")
        context = self._contexts.server(tunnel.connect_host, str(sock[0]) if sock else "")
        # the tunnel's first request head is due within the header timeout, handshake
        # included (as through mitmproxy: its timer starts at the CONNECT)
        deadline = asyncio.get_running_loop().time() + self.header_timeout
        try:
            await writer.start_tls(context, ssl_handshake_timeout=min(HANDSHAKE_TIMEOUT,
                                                                      self.header_timeout),
                                   ssl_shutdown_timeout=SHUTDOWN_TIMEOUT)
        except (OSError, ssl.SSLError, TimeoutError) as e:
            log.info("guard: TLS handshake with client for %s failed: %s",
                     tunnel.connect_host, e)
            writer.close()
            return
        sslobj = writer.get_extra_info("ssl_object")
        sni = getattr(sslobj, "guard_sni", None) if sslobj is not None else None
        tunnel = Tunnel(tunnel.client, tunnel.connect_host, tunnel.port, tunnel.proxy_auth,
                        sni)
        alpn = sslobj.selected_alpn_protocol() if sslobj is not None else None
        try:
            if alpn == "h2":
                from guard.proxy.fastpath import http2

                await http2.serve(reader, writer, tunnel, self.exchange,
                                  header_timeout=self.header_timeout,
                                  idle_timeout=self.idle_timeout)
            else:
                await self._serve_http1(reader, writer, tunnel, deadline)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError) as e:
            log.debug("guard: fast-path connection ended: %s", e)
        finally:
            writer.close()

    async def _serve_http1(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           tunnel: Tunnel, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                got = await http1.read_request(reader, writer, self.exchange.limits,
                                               self.exchange.max_body, head_deadline=deadline,
                                               idle_timeout=self.idle_timeout)
            except http1.Refused as e:  # a named limit: audited, answered, connection ends
                answer = await self.exchange.refuse(tunnel, e.refusal, e.head.method,
                                                    e.head.target, e.head.headers,
                                                    e.head.get("host"))
                assert answer.status is not None
                writer.write(http1.response_bytes(answer.status, answer.headers, answer.body))
                await writer.drain()
                await _linger(reader)
                return
            except http1.BadRequest as e:
                log.info("guard: bad request from %s for %s: %s", tunnel.client,
                         tunnel.connect_host, e)
                writer.write(http1.error_bytes(e.status, e.message))
                await writer.drain()
                return
            if got is None:
                return
            head, body = got
            self.exchange.inflight += 1
            try:
                answer = await self.exchange.answer(tunnel, head.method, head.target,
                                                    head.headers, body, head.get("host"))
                if answer.status is None:
                    _end(writer, answer)
                    return
                keep = head.keep_alive and not any(k.lower() == "connection" and
                                                   "close" in v.lower()
                                                   for k, v in answer.headers)
                send_body = head.method.upper() != "HEAD" and answer.status not in (204, 304)
                writer.write(http1.response_bytes(answer.status, answer.headers, answer.body,
                                                  send_body=send_body))
                await writer.drain()
            finally:
                self.exchange.inflight -= 1
            if not keep:
                return
            deadline = loop.time() + self.header_timeout  # the next head: from this answer


LINGER_BYTES = 4 * 1024 * 1024
LINGER_SECONDS = 5.0


async def _linger(reader: asyncio.StreamReader) -> None:
    """Read (and drop) what the client is still sending of a refused request, for a
    while, so that closing does not reset the connection before it reads the answer."""
    left = LINGER_BYTES
    try:
        async with asyncio.timeout(LINGER_SECONDS):
            while left > 0:
                chunk = await reader.read(min(left, 65536))
                if not chunk:
                    return
                left -= len(chunk)
    except (TimeoutError, ConnectionError, ssl.SSLError):
        return


def _end(writer: asyncio.StreamWriter, answer: Answer) -> None:
    """No answer: an injected reset aborts the connection, a timeout closes it."""
    if answer.reset:
        writer.transport.abort()
    else:
        writer.close()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HandedOver:
    """The stream of a connection handed to mitmproxy. Its first read waits one turn of
    the event loop: what the fast path read (bytes, or the end of the stream) is already
    there, and mitmproxy's connection task, which starts eagerly (mitmproxy's task
    factory), must not get to close the connection before mitmproxy's handler has
    registered that task: it would crash (an assertion in ``close_connection``) and skip
    its client_disconnected hook, so the connection would never stop counting against
    its address (a client that opened and closed ``--max-client-connections``
    connections without a byte was refused from then on)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self._first = True

    async def read(self, n: int = -1) -> bytes:
        if self._first:
            self._first = False
            await asyncio.sleep(0)
        return await self.stream.read(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _put_back(reader: asyncio.StreamReader, data: bytes) -> None:
    """Put bytes already read back in front of the stream (for mitmproxy to read)."""
    if data:
        buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
        buffer[0:0] = data
        with contextlib.suppress(AttributeError):
            reader._wakeup_waiter()  # type: ignore[attr-defined]
