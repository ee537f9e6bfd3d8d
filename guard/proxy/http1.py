"""What mitmproxy 12.2's HTTP/1 layer does not do, added where guard runs it.

- **A head of any size.** mitmproxy reads a request head until it ends, however long
  that takes (``FIXME: protect against header size DoS`` in ``Http1Server``). Here a head
  still incomplete past the ``guard_max_head_bytes`` option (which the head addon
  declares and sets from ``--max-header-bytes`` and ``--max-url-bytes``) is refused at
  once: :class:`HeadTooLargeHook` lets the addon audit it and write the answer (414 when
  the request line has not ended, else 431), with ``Connection: close``; what the client
  still sends is read and dropped (up to :data:`DRAIN_BYTES`, then the connection is cut)
  until it closes, so it can read the answer. A
  complete head is parsed by mitmproxy and measured by the addon, in ``requestheaders``.
- **Trailers.** A chunked body with trailer fields raises ``NotImplementedError`` in the
  connection handler: the client hangs and no flow ends, so nothing is audited. Here a
  request's trailers reach the flow (``flow.request.trailers``; the head addon refuses
  the request with 400), and trailers that HTTP/1 cannot carry on (a response's to an
  HTTP/1 client, a streamed request's to an HTTP/1 server) are dropped.
- **A head that cannot be parsed** (a bad request line, header or Content-Length) gets
  guard's JSON 400 ``guard.request-unreadable`` instead of mitmproxy's HTML page, and an
  audit event (through the hook when no flow was made of it).
- **A body that is not valid chunked encoding** gets guard's 400 before the connection is
  closed (mitmproxy closes it without an answer); the flow's error hook audits it.

:func:`install` patches mitmproxy's HTTP/1 classes, once; :func:`guard.proxy.master.start`
calls it. The patched methods behave as mitmproxy's own when the option is 0 (not set).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import h11
from h11._receivebuffer import ReceiveBuffer
from mitmproxy import connection, http
from mitmproxy.connection import ConnectionState
from mitmproxy.net.http import http1 as http1_wire
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.layers.http import _events as hev
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.proxy.layers.http._base import ReceiveHttp

from guard import head_limits
from guard.request import Response

log = logging.getLogger("guard")

HEAD_OPTION = "guard_max_head_bytes"
DRAIN_BYTES = 16 * 1024 * 1024  # read and dropped after a refused head, then the cut
KEPT_HEAD = 8 * 1024  # bytes of a refused head handed to the addon (for the audit log)

Commands = Generator[commands.Command, Any, None]


@dataclass
class HeadTooLarge:
    """A request head that grew past the limit before it ended, or (``problem``) that
    could not be parsed. The addon sets ``response`` (the whole HTTP/1 answer); without
    one, guard's 431/414 (or 400) is sent."""

    client: connection.Client
    head: bytes  # its first KEPT_HEAD bytes
    size: int  # bytes received when it was refused
    line_ended: bool  # whether the request line ended within the limit
    server: tuple[str, int] | None  # where the connection goes (a tunnel, transparent mode)
    limit: int
    problem: str = ""  # not a size: why it could not be read (then limit is 0)
    response: bytes | None = None


@dataclass
class HeadTooLargeHook(commands.StartHook):
    """Called on the addons as ``guard_head_too_large(data)``."""

    data: HeadTooLarge
    name = "guard_head_too_large"


def wire(response: Response) -> bytes:
    """guard's response as HTTP/1 bytes."""
    headers = http.Headers([(k.encode(), v.encode()) for k, v in response.headers])
    return bytes(http1_wire.assemble_response(
        http.Response.make(response.status, response.body, headers)))


# the patched methods

_originals: dict[str, Callable[..., Any]] = {}


def _read_headers(self: _http1.Http1Server, event: events.ConnectionEvent) -> Commands:
    held: list[commands.Command] | None = None
    for command in _originals["read_headers"](self, event):  # (none of them blocks)
        if held is None and isinstance(command, commands.SendData) \
                and self.state == self.read_headers:
            held = []  # mitmproxy's HTML 400 for a head it cannot parse: replaced below
            continue
        if held is not None:
            held.append(command)
        else:
            yield command
    if held is not None:
        yield from _unparsable(self, held)
        return
    if self.state != self.read_headers or not isinstance(event, events.DataReceived):
        return  # the head ended (or the connection did)
    limit = getattr(self.context.options, HEAD_OPTION, 0)
    if limit and len(self.buf) > limit:
        yield from _refuse_head(self, limit)


def _unparsable(self: _http1.Http1Server, held: list[commands.Command]) -> Commands:
    """guard's JSON 400 and an audit event for a head mitmproxy could not parse. When it
    parsed the request line and headers (a bad Content-Length, say), the flow's own error
    hook audits it; else :class:`HeadTooLargeHook` does, with what came of the head. The
    connection is closed last: closing first would cancel the audit."""
    flow_errors = [c.event for c in held if isinstance(c, ReceiveHttp)
                   and isinstance(c.event, hev.RequestProtocolError)]
    logged = [c.message for c in held if isinstance(c, commands.Log)]
    why = flow_errors[0].message if flow_errors else (logged[0] if logged else "")
    peer = self.conn.peername
    if peer is not None:  # mitmproxy's log line starts with the client's address
        why = why.removeprefix(f"{peer[0]}:{peer[1]}: ")
    refusal = head_limits.unreadable(why[:512])
    answer = wire(refusal.response())
    if not flow_errors:
        raw = bytes(self.buf)
        client = self.conn
        assert isinstance(client, connection.Client)
        data = HeadTooLarge(client, raw[:KEPT_HEAD], len(raw), line_ended=True,
                            server=self.context.server.address, limit=0, problem=why[:512])
        yield HeadTooLargeHook(data)
        answer = data.response or answer
    yield commands.SendData(self.conn, answer)
    closes = [c for c in held if isinstance(c, commands.CloseConnection)]
    for command in held:
        if not isinstance(command, (commands.CloseConnection, commands.Log)):
            yield command
    yield from closes or [commands.CloseConnection(self.conn)]


def _refuse_head(self: _http1.Http1Server, limit: int) -> Commands:
    raw = bytes(self.buf)  # at most the limit and one read
    client = self.conn
    assert isinstance(client, connection.Client)
    data = HeadTooLarge(client, raw[:KEPT_HEAD], len(raw),
                        line_ended=raw.find(b"\n", 0, limit) >= 0,
                        server=self.context.server.address, limit=limit)
    yield HeadTooLargeHook(data)
    if data.response is None:  # no addon answered: guard's refusal all the same
        refusal = head_limits.header_refusal(limit) if data.line_ended \
            else head_limits.url_refusal(limit)
        data.response = wire(refusal.response())
    yield commands.SendData(self.conn, data.response)
    # Not closed yet: a client still sending would get a reset instead of the answer (a
    # half close is no better in TLS). It says "Connection: close"; the client closes.
    self.buf = ReceiveBuffer()
    drained = 0

    def drain(event: events.Event) -> Commands:
        nonlocal drained
        self.buf = ReceiveBuffer()  # what the client still sends is dropped
        if isinstance(event, events.DataReceived):
            drained += len(event.data)
            if drained <= DRAIN_BYTES:
                return
        if self.conn.state is not ConnectionState.CLOSED:
            yield commands.CloseConnection(self.conn)
        self.state = self.done

    self.state = drain


def _read_body(self: _http1.Http1Connection, event: events.Event) -> Commands:
    """mitmproxy's ``read_body``, but for trailers and a 400 on a broken request body."""
    assert self.stream_id is not None
    server = isinstance(self, _http1.Http1Server)
    while True:
        try:
            if isinstance(event, events.DataReceived):
                h11_event = self.body_reader(self.buf)
            elif isinstance(event, events.ConnectionClosed):
                h11_event = self.body_reader.read_eof()
            else:
                raise AssertionError(f"Unexpected event: {event}")
        except h11.ProtocolError as e:
            why = f"HTTP/1 protocol error: {e}"
            if server and self.response is None and self.conn.state & ConnectionState.CAN_WRITE:
                yield commands.SendData(self.conn,
                                        wire(head_limits.unreadable(why).response()))
            # The flow's error hook (the audit event) before the close: closing cancels
            # whatever the connection still has pending.
            yield ReceiveHttp(self.ReceiveProtocolError(
                self.stream_id, why, code=self.ReceiveProtocolError.code))
            yield commands.CloseConnection(self.conn)
            return
        if h11_event is None:
            return
        if isinstance(h11_event, h11.Data):
            data = bytes(h11_event.data)
            if data:
                yield ReceiveHttp(self.ReceiveData(self.stream_id, data))
        elif isinstance(h11_event, h11.EndOfMessage):
            assert self.request
            if h11_event.headers and server:
                trailers = http.Headers([(bytes(k), bytes(v)) for k, v in h11_event.headers])
                yield ReceiveHttp(hev.RequestTrailers(self.stream_id, trailers))
            elif h11_event.headers:
                log.info("guard: trailers of a response from %s dropped (HTTP/1 clients of "
                         "guard get none)", self.request.host)
            if self.request.data.method.upper() != b"CONNECT":
                yield ReceiveHttp(self.ReceiveEndOfMessage(self.stream_id))
            yield from self.mark_done(request=server, response=not server)
            return


def _server_send(self: _http1.Http1Server, event: hev.HttpEvent) -> Commands:
    if isinstance(event, hev.ResponseTrailers):
        return  # HTTP/1 cannot carry them on here (see the module docstring)
    yield from _originals["server_send"](self, event)


def _client_send(self: _http1.Http1Client, event: hev.HttpEvent) -> Commands:
    if isinstance(event, hev.RequestTrailers):
        log.info("guard: trailers of a streamed request dropped before forwarding")
        return
    yield from _originals["client_send"](self, event)


def install() -> None:
    """Patch mitmproxy's HTTP/1 server and client (once per process)."""
    if _originals:
        return
    _originals["read_headers"] = _http1.Http1Server.read_headers
    _originals["server_send"] = _http1.Http1Server.send
    _originals["client_send"] = _http1.Http1Client.send
    _originals["read_body"] = _http1.Http1Connection.read_body
    _http1.Http1Server.read_headers = _read_headers  # type: ignore[method-assign]
    _http1.Http1Server.send = _server_send  # type: ignore[method-assign]
    _http1.Http1Client.send = _client_send  # type: ignore[method-assign]
    _http1.Http1Connection.read_body = _read_body  # type: ignore[method-assign]


__all__ = ["HEAD_OPTION", "HeadTooLarge", "HeadTooLargeHook", "install", "wire"]
