"""HTTP/2 for the fast path, with the ``h2`` library (mitmproxy's own): each stream's
request is collected (headers checked by h2: pseudo-headers, no connection-specific
headers, lower-case names), answered by the exchange while other streams go on, and
the response sent within the client's flow-control windows.

A stream without ``:method``, ``:path`` or ``:authority``/Host, a CONNECT stream, or a
body over :data:`~guard.proxy.fastpath.http1.MAX_BODY` is reset (nothing is answered,
nothing leaves); an injected timeout or reset resets its stream.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.utilities import HeaderValidationFlags, validate_headers

from guard import head_limits
from guard.head_limits import Refusal
from guard.proxy.fastpath.exchange import Answer, Exchange, Tunnel
from guard.proxy.fastpath.hpack_out import AnswerEncoder
from guard.proxy.fastpath.http1 import MAX_BODY

log = logging.getLogger("guard")

# Connection-specific headers (RFC 9113 section 8.2.2): never in an HTTP/2 response.
CONNECTION_HEADERS = frozenset(("connection", "keep-alive", "proxy-connection",
                                "transfer-encoding", "upgrade"))
# h2's checks of what a client sends, as h2 runs them on a server's streams
REQUEST = HeaderValidationFlags(is_client=False, is_trailer=False, is_response_header=False,
                                is_push_promise=False)
TRAILERS = REQUEST._replace(is_trailer=True)
CHECKED_KEEP = 256  # header lists remembered as checked, per connection


@dataclass
class _Stream:
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)


def _text(b: bytes | str) -> str:
    return b.decode("utf-8", "surrogateescape") if isinstance(b, bytes) else b


class Connection:
    """One HTTP/2 connection on a tunnel."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 tunnel: Tunnel, exchange: Exchange, *, header_timeout: float | None = None,
                 idle_timeout: float | None = None) -> None:
        self.reader, self.writer = reader, writer
        # with no stream open or being answered, the next request is due within
        # header_timeout of the last answer (of the tunnel's opening, at first); while
        # one is, the connection may stay silent for idle_timeout (as through mitmproxy)
        self.header_timeout, self.idle_timeout = header_timeout, idle_timeout
        self.quiet_since = asyncio.get_running_loop().time()
        self.tunnel, self.exchange = tunnel, exchange
        # What comes in is checked by h2's own checks (pseudo-headers, no connection-
        # specific headers, names in lower case, no illegal characters), run here (see
        # _checked) rather than inside h2, so that a header list a client sends again on
        # this connection is checked once; what goes out is guard's own answer, its
        # names lower-cased and connection-specific headers left out by _send, so it is
        # encoded as mitmproxy's HTTP/2 layer encodes it (no outbound normalizing or
        # validation passes).
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False,
            validate_outbound_headers=False, normalize_outbound_headers=False))
        self._checked_lists: set[tuple[HeaderValidationFlags, tuple[Any, ...]]] = set()
        self.h2.encoder = AnswerEncoder()  # guard's answers: fields encoded once, cached
        self.streams: dict[int, _Stream] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.window = asyncio.Event()  # set when the client opens flow-control windows
        self.closed = False
        self._flushing = False

    async def serve(self) -> None:
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
        })
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window((1 << 24) - 65535)
        self._flush()
        try:
            while not self.closed:
                try:
                    async with asyncio.timeout(self._read_timeout()):
                        data = await self.reader.read(65536)
                except TimeoutError:
                    log.debug("guard: HTTP/2 connection from %s timed out", self.tunnel.client)
                    break
                if not data:
                    break
                try:
                    for event in self.h2.receive_data(data):
                        self._event(event)
                except h2.exceptions.ProtocolError as e:
                    log.info("guard: HTTP/2 protocol error from %s: %s", self.tunnel.client, e)
                    break
                self._flush()
                await self.writer.drain()
        finally:
            self.closed = True
            self.window.set()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            self._send_queued()  # a GOAWAY, the last answers: before the connection closes

    def _read_timeout(self) -> float | None:
        if self.streams or self.tasks:
            return self.idle_timeout
        if self.header_timeout is None:
            return None
        return max(0.0, self.quiet_since + self.header_timeout -
                   asyncio.get_running_loop().time())

    def _answered(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not self.tasks:
            self.quiet_since = asyncio.get_running_loop().time()

    def _checked(self, headers: Any, flags: HeaderValidationFlags) -> None:
        """h2's checks of received headers (as ``validate_inbound_headers`` runs them):
        raises ProtocolError, which ends the connection, as it does from h2. Each header
        list that passed is remembered for this connection (they only read it)."""
        key = (flags, tuple(headers or ()))
        if key in self._checked_lists:
            return
        for _ in validate_headers(key[1], flags):
            pass
        if len(self._checked_lists) >= CHECKED_KEEP:
            self._checked_lists.clear()
        self._checked_lists.add(key)

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._checked(event.headers, REQUEST)
            sid = event.stream_id
            self.streams[sid] = _Stream([(_text(k), _text(v)) for k, v in event.headers or []])
            if event.stream_ended is not None:
                self._dispatch(sid)
        elif isinstance(event, h2.events.DataReceived):
            sid = event.stream_id
            self.h2.acknowledge_received_data(event.flow_controlled_length, sid)
            stream = self.streams.get(sid)
            if stream is None:
                return
            stream.body += event.data or b""
            limit = self.exchange.max_body
            if len(stream.body) > (min(limit, MAX_BODY) if limit > 0 else MAX_BODY):
                self._reset(sid, ErrorCodes.REFUSED_STREAM)
            elif event.stream_ended is not None:
                self._dispatch(sid)
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self.streams:
                self._dispatch(event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self._checked(event.headers, TRAILERS)  # (then read as before: not at all)
        elif isinstance(event, h2.events.StreamReset):
            self.streams.pop(event.stream_id, None)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True

    def _reset(self, sid: int, code: ErrorCodes) -> None:
        self.streams.pop(sid, None)
        try:
            self.h2.reset_stream(sid, code)
        except h2.exceptions.H2Error:
            pass

    def _dispatch(self, sid: int) -> None:
        stream = self.streams.pop(sid, None)
        if stream is None:
            return
        pseudo = {k: v for k, v in stream.headers if k.startswith(":")}
        headers = [(k, v) for k, v in stream.headers if not k.startswith(":")]
        method, path = pseudo.get(":method"), pseudo.get(":path")
        authority = pseudo.get(":authority") or next(
            (v for k, v in headers if k == "host"), None)
        if not method or not path or method == "CONNECT" or not authority:
            self._reset(sid, ErrorCodes.PROTOCOL_ERROR)
            return
        refusal = self.exchange.limits.check(
            url_bytes=len(path) + len(authority),
            header_bytes=head_limits.header_bytes(
                (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
                for k, v in headers))
        task = asyncio.get_running_loop().create_task(
            self._answer(sid, method, path, headers, bytes(stream.body), authority, refusal))
        if not task.done():  # (an eager task may be done already)
            self.tasks.add(task)
            task.add_done_callback(self._answered)
        else:
            self.quiet_since = asyncio.get_running_loop().time()

    async def _answer(self, sid: int, method: str, path: str, headers: list[tuple[str, str]],
                      body: bytes, authority: str, refusal: Refusal | None) -> None:
        self.exchange.inflight += 1
        try:
            if refusal is not None:  # a named limit: audited and answered, as over HTTP/1
                answer = await self.exchange.refuse(self.tunnel, refusal, method, path,
                                                    headers, authority)
            else:
                answer = await self.exchange.answer(self.tunnel, method, path, headers, body,
                                                    authority)
            if self.closed:
                return
            try:
                await self._send(sid, method, answer)
            except (h2.exceptions.H2Error, ConnectionError) as e:
                log.debug("guard: HTTP/2 stream %d not answered: %s", sid, e)
        finally:
            self.exchange.inflight -= 1

    async def _send(self, sid: int, method: str, answer: Answer) -> None:
        if answer.status is None:  # an injected timeout or reset
            self._reset(sid, ErrorCodes.CANCEL)
            self._flush()
            return
        fields = [(":status", str(answer.status))] + [
            (k.lower(), v) for k, v in answer.headers if k.lower() not in CONNECTION_HEADERS]
        body = answer.body if method != "HEAD" and answer.status not in (204, 304) else b""
        self.h2.send_headers(sid, [(k.encode("utf-8", "surrogateescape"),
                                    v.encode("utf-8", "surrogateescape")) for k, v in fields],
                             end_stream=not body)
        view = memoryview(body)
        while view:  # headers and body in one write while the windows allow
            size = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size,
                       len(view))
            if size <= 0:
                self._flush()
                self.window.clear()
                await self.window.wait()
                if self.closed:
                    return
                continue
            chunk, view = view[:size], view[size:]
            self.h2.send_data(sid, bytes(chunk), end_stream=not view)
        self._flush()
        await self.writer.drain()

    def _flush(self) -> None:
        """Send what h2 has queued at the end of this turn of the loop: the answers of the
        streams that finish in one turn go out in one TLS record and one send."""
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._send_queued)

    def _send_queued(self) -> None:
        self._flushing = False
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tunnel: Tunnel,
                exchange: Exchange, *, header_timeout: float | None = None,
                idle_timeout: float | None = None) -> None:
    await Connection(reader, writer, tunnel, exchange, header_timeout=header_timeout,
                     idle_timeout=idle_timeout).serve()
