"""The limits addon: what one client may hold open, and the request body limit's audit.

- **Connections per client address** (``--max-client-connections``): one more is refused
  as it opens (a plain-HTTP listener first writes a 429 guard JSON error naming
  ``guard.limit.connections``), and audited; the other clients are not affected.
- **Header-read timeout** (``--header-timeout``): a connection must send a whole request
  head within the timeout of opening, and of its last answer. One that does not is
  closed (a half-sent request on plain HTTP/1 gets a 408 first). A connection that never
  sent a whole head is audited under ``guard.limit.header-timeout``; an idle keep-alive
  connection is closed quietly. While a request is in flight, and on WebSockets, only the
  idle timeout (``--idle-timeout``, mitmproxy's ``tcp_timeout``) counts.
- **Request body size** (``--max-body-size``): refused inside mitmproxy's HTTP layer
  (:mod:`guard.proxy.bodylimit`); here the refused flow gets its rule for the audit log.

Loaded first, so that its ``error`` hook names the rule before the recorder writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mitmproxy import connection, ctx, http
from mitmproxy.proxy import mode_specs
from mitmproxy.proxy.layers.http import HttpLayer
from mitmproxy.proxy.layers.http._http1 import Http1Server

from guard.audit.event import FlowRecord
from guard.decision import Action, Decision
from guard.limits import BODY_RULE, CONNECTIONS_RULE, HEADER_TIMEOUT_RULE
from guard.options import Options
from guard.proxy import bodylimit, linger
from guard.proxy.addons.identity import SandboxIdentity, bare_request
from guard.proxy.flowstate import FlowState, attach, state_of
from guard.request import Request

log = logging.getLogger("guard")

Handover = tuple[Any, Any]  # (peername, sockname) of a connection the fast path handed over


@dataclass
class _Conn:
    client: connection.Client
    in_flight: int = 0
    heads: int = 0  # whole request heads received
    armed_at: float = 0.0
    timer: asyncio.TimerHandle | None = None
    tunnelled: bool = False  # after CONNECT: the bytes are the tunnel's, not plain HTTP
    upgraded: bool = False  # a WebSocket: the idle timeout only
    handover: Handover | None = None  # counted by the fast path, which handed it over


class Limits:
    def __init__(self, opts: Options, identity: SandboxIdentity,
                 write_event: Callable[[FlowRecord], Any], worlds: Any = None) -> None:
        self.max_body_size = opts.max_body_size
        self.max_connections = opts.max_client_connections
        self.header_timeout = opts.header_timeout
        self.identity = identity
        self.write_event = write_event
        self.open: Counter[str] = Counter()  # client address -> open connections
        self._conns: dict[str, _Conn] = {}  # counted connections, by client id
        # connections the fast path counted and handed to mitmproxy, by (peername,
        # sockname): their count passes to the client_connected that claims them
        self._handed: dict[Handover, str] = {}  # -> client address
        self._claimed: dict[Handover, str] = {}  # -> client id, until client_disconnected
        self.refused = 0  # connections refused over the limit (for tests and metrics)
        self.timed_out = 0  # connections closed by the header timeout
        self._lingering: set[asyncio.Future[None]] = set()
        self.world_idle_evict = opts.world_idle_evict
        self.worlds = worlds  # evicted when idle, if the store can (the in-process one)
        self.evicted: list[str] = []
        self._evictor: asyncio.Task[None] | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(bodylimit.OPTION, int, 0, "guard: refuse request bodies over this "
                          "many bytes (0: no limit)")

    # idle worlds

    def running(self) -> None:
        if self.world_idle_evict > 0 and hasattr(self.worlds, "evict"):
            self._evictor = asyncio.ensure_future(self._evict_idle())

    def done(self) -> None:
        if self._evictor is not None:
            self._evictor.cancel()

    async def _evict_idle(self) -> None:
        every = min(60.0, max(0.05, self.world_idle_evict / 4))
        while True:
            await asyncio.sleep(every)
            self.evict_now()

    def evict_now(self) -> list[str]:
        """Evict the worlds idle for longer than --world-idle-evict (also a seam for tests)."""
        try:
            gone: list[str] = self.worlds.evict(self.world_idle_evict)
        except Exception as e:  # a journal that cannot be written: keep the world in memory
            log.error("guard: cannot evict idle worlds: %s", e)
            return []
        if gone:
            log.info("guard: evicted %d idle world(s) from memory", len(gone))
            self.evicted += gone
            del self.evicted[:-1000]
        return gone

    # connections

    def client_connected(self, client: connection.Client) -> None:
        address = client.peername[0] if client.peername else ""
        key = (client.peername, client.sockname)
        if self._handed.pop(key, None) is not None:  # counted since the fast path took it
            self._claimed[key] = client.id
            conn = self._conns[client.id] = _Conn(client, handover=key)
            self._arm(conn)
            return
        if self.open[address] >= self.max_connections:
            self.refused += 1
            reason = (f"client {address} already has {self.open[address]} open connections "
                      f"(--max-client-connections {self.max_connections})")
            client.error = f"guard: {reason}"
            if isinstance(client.proxy_mode, mode_specs.RegularMode):
                self._write(client, _answer(429, CONNECTIONS_RULE, reason))
            self._audit(client, CONNECTIONS_RULE, reason)
            return
        self.open[address] += 1
        conn = self._conns[client.id] = _Conn(client)
        self._arm(conn)

    # the fast path's connections (guard.proxy.fastpath), which mitmproxy never sees

    def hold(self, address: str) -> bool:
        """Count a connection the fast path holds against its client address, from its
        accept to its close (:meth:`release`) or to mitmproxy (:meth:`hand_over`); False
        (not counted) when the address is at its limit: the fast path then gives it to
        mitmproxy as it is, which refuses it here (429, audited)."""
        if self.open[address] >= self.max_connections:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        """A connection :meth:`hold` counted is closed (the fast path served it)."""
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    def hand_over(self, peername: Any, sockname: Any, address: str) -> Handover:
        """A connection :meth:`hold` counted goes to mitmproxy: its count passes, as it is,
        to the :meth:`client_connected` of the same (peername, sockname), not counted (or
        refused) again. :meth:`handed_back` once mitmproxy is done with it."""
        key = (peername, sockname)
        self._handed[key] = address
        return key

    def handed_back(self, key: Handover) -> None:
        """mitmproxy's handler for a connection :meth:`hand_over` gave it has returned:
        the count ends here if mitmproxy never claimed it, or never said it disconnected
        (a handler that crashed skips the client_disconnected hook)."""
        address = self._handed.pop(key, None)
        if address is not None:
            self.release(address)
            return
        client_id = self._claimed.pop(key, None)
        conn = self._conns.get(client_id) if client_id is not None else None
        if conn is not None:
            self._forget(conn)

    def head_timed_out(self, address: str, sockname: Any, partial: bool) -> bytes:
        """A fast-path connection sent no whole head within the header timeout of opening:
        audited as through mitmproxy; the 408 to write first when it sent part of one."""
        self.timed_out += 1
        reason = f"no whole request head within {self.header_timeout:g}s (--header-timeout)"
        host, port = (str(sockname[0]), int(sockname[1])) if sockname else ("", 0)
        self._audit_at(address, host, port, HEADER_TIMEOUT_RULE, reason)
        return _answer(408, HEADER_TIMEOUT_RULE, reason) if partial else b""

    def client_disconnected(self, client: connection.Client) -> None:
        conn = self._conns.get(client.id)
        self._close_socket(client)
        if conn is not None:
            self._forget(conn)

    def _forget(self, conn: _Conn) -> None:
        """The end of a counted connection: its count and its timer go."""
        del self._conns[conn.client.id]
        if conn.handover is not None:
            self._claimed.pop(conn.handover, None)
        self._disarm(conn)
        client = conn.client
        self.release(client.peername[0] if client.peername else "")

    def http_connect(self, flow: http.HTTPFlow) -> None:
        conn = self._conns.get(flow.client_conn.id)
        if conn is not None:  # the tunnel's first request head is awaited afresh
            conn.tunnelled = True
            conn.heads += 1
            self._arm(conn)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        conn = self._conns.get(flow.client_conn.id)
        if conn is not None:
            conn.heads += 1
            conn.in_flight += 1
            self._disarm(conn)

    def response(self, flow: http.HTTPFlow) -> None:
        self._flow_done(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        message = flow.error.msg if flow.error is not None else ""
        if bodylimit.is_refusal(message):
            self._name_body_refusal(flow, message)
            self._linger_on_close(flow.client_conn)
            conn = self._conns.get(flow.client_conn.id)
            if conn is not None:
                conn.heads += 1
        self._flow_done(flow)

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        conn = self._conns.get(flow.client_conn.id)
        if conn is not None:
            conn.upgraded = True
            self._disarm(conn)

    def _flow_done(self, flow: http.HTTPFlow) -> None:
        conn = self._conns.get(flow.client_conn.id)
        if conn is None or flow.request.method == "CONNECT" and flow.response is None:
            return
        if flow.websocket is not None and flow.websocket.timestamp_end is None:
            return  # the upgrade's own response: the connection is a WebSocket now
        conn.in_flight = max(0, conn.in_flight - 1)
        if conn.in_flight == 0 and not conn.upgraded:
            self._arm(conn)

    def _arm(self, conn: _Conn) -> None:
        self._disarm(conn)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not in the proxy's loop (unit tests of hooks)
            return
        conn.armed_at = time.time()
        conn.timer = loop.call_later(self.header_timeout, self._expire, conn)

    def _disarm(self, conn: _Conn) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None

    def _expire(self, conn: _Conn) -> None:
        conn.timer = None
        if conn.in_flight or conn.upgraded or conn.client.id not in self._conns:
            return
        handler = _handler(conn.client)
        if handler is None:
            return
        partial = not conn.tunnelled and _pending_head(handler)
        self.timed_out += 1
        if partial or conn.heads == 0:
            reason = (f"no whole request head within {self.header_timeout:g}s "
                      "(--header-timeout)")
            if partial:
                self._write(conn.client, _answer(408, HEADER_TIMEOUT_RULE, reason))
            self._audit(conn.client, HEADER_TIMEOUT_RULE, reason)
        close = getattr(handler, "on_timeout", None)
        if close is not None:
            asyncio.ensure_future(close())

    # the body limit

    def _name_body_refusal(self, flow: http.HTTPFlow, message: str) -> None:
        state = state_of(flow) or attach(flow, FlowState(bare_request(flow)))
        try:
            identity = self.identity.identify(flow)
            state.identity = identity
            state.request = self.identity.to_request(flow, identity.sandbox or "",
                                                     decode=False)
        except Exception:  # what is known of it is enough for the event
            pass
        reason = message.removeprefix("guard: ")
        state.decision = Decision(Action.BLOCK, BODY_RULE, reason)
        state.error = reason

    # closing

    def _close_socket(self, client: connection.Client) -> None:
        """mitmproxy can lose a client socket it was told to close (a second cancellation
        of its connection task skips the close): such a socket is closed here, so that
        refused requests do not leak descriptors (a refused body's lingers first)."""
        io = _transport(client)
        writer = getattr(io, "writer", None)
        if writer is None or not hasattr(writer, "is_closing") or writer.is_closing():
            return
        writer.close()

    def _linger_on_close(self, client: connection.Client) -> None:
        """After a 413 for a body the client may still be sending, its socket must not be
        closed with that body unread (the kernel would reset the connection, and a client
        that sends its whole body before reading would see the reset, not the answer). The
        close can come from mitmproxy's connection task (when its cancellation lands in a
        read) or from :meth:`client_disconnected` (when it lands while the task waits for
        its event lock, which skips mitmproxy's close): so the writer itself is replaced,
        here in the error hook, before the 413 is written, by one whose close lingers."""
        io = _transport(client)
        reader = getattr(io, "reader", None)
        reader = getattr(reader, "stream", reader)  # the fast path's handed-over reader
        writer = getattr(io, "writer", None)
        if isinstance(reader, asyncio.StreamReader) and \
                isinstance(writer, asyncio.StreamWriter) and not writer.is_closing():
            io.writer = linger.LingeringWriter(reader, writer, self.header_timeout,
                                               self._lingering)

    # helpers

    def _write(self, client: connection.Client, data: bytes) -> None:
        writer = getattr(_transport(client), "writer", None)
        try:
            if writer is not None:
                writer.write(data)
        except Exception as e:  # the client is gone: it is closed all the same
            log.debug("guard: cannot answer a refused connection: %s", e)

    def _audit(self, client: connection.Client, rule_id: str, reason: str) -> None:
        address = client.peername[0] if client.peername else ""
        host, port = (client.sockname[0], client.sockname[1]) if client.sockname else ("", 0)
        self._audit_at(address, str(host), int(port), rule_id, reason)

    def _audit_at(self, address: str, host: str, port: int, rule_id: str, reason: str) -> None:
        sandbox = ""
        try:
            sandbox = self.identity.identify_address(address) or ""
        except Exception:
            pass
        req = Request("TCP", "tcp", str(host), int(port), "", client=address, sandbox=sandbox)
        try:
            self.write_event(FlowRecord(req, rule_id, Action.BLOCK, reason,
                                        started=time.time(), error=reason))
        except Exception as e:  # the log is down: the connection is refused all the same
            log.error("guard: cannot record a refused connection: %s", e)


def _transport(client: connection.Client) -> Any:
    """mitmproxy's ConnectionIO (reader, writer) of a client, while it has one."""
    handler = _handler(client)
    return getattr(handler, "transports", {}).get(client) if handler is not None else None


def _handler(client: connection.Client) -> Any:
    try:
        server = ctx.master.addons.get("proxyserver")
    except Exception:
        return None
    return getattr(server, "connections", {}).get(client.id) if server is not None else None


def _pending_head(handler: Any) -> bool:
    """Whether a plain HTTP/1 connection holds part of a request head (bytes mitmproxy has
    received and not yet parsed): the layers are walked down to the HTTP/1 server's
    receive buffer."""
    layer = getattr(handler, "layer", None)
    for _ in range(8):
        if isinstance(layer, HttpLayer):
            server = layer.connections.get(handler.client)
            return isinstance(server, Http1Server) and len(server.buf) > 0
        below = getattr(layer, "layer", None) or getattr(layer, "child_layer", None)
        if below is None:  # modes.HttpProxy hands its events to the next layer's method
            below = getattr(getattr(layer, "_handle_event", None), "__self__", None)
        if below is layer:
            return False
        layer = below
    return False


def _answer(status: int, rule_id: str, reason: str) -> bytes:
    body = json.dumps({"error": {"type": "guard_limit", "code": "limit", "rule": rule_id,
                                 "message": f"guard refused this connection (rule "
                                 f"{rule_id}): {reason}"}}).encode()
    title = {408: "Request Timeout", 429: "Too Many Requests"}[status]
    head = (f"HTTP/1.1 {status} {title}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nX-Guard-Rule: {rule_id}\r\n"
            "X-Guard-Action: block\r\n\r\n")
    return head.encode() + body
