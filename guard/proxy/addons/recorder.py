"""The audit recorder addon: every flow is written to the audit log when it ends (response
or error), with what guard decided, through :class:`guard.audit.recorder.Recorder` (which
writes a minimal event when request content defeats the full one). A flow whose event
cannot be written does not get its answer: it gets a 503 naming the audit log (fail
closed). The event of an allowed request is written before it leaves, by the egress gate
through the same recorder."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from mitmproxy import http, tcp

from guard import internal_host, pipeline
from guard.audit.event import EventBuilder, FlowRecord
from guard.audit.recorder import Recorder
from guard.audit.writer import AuditWriter
from guard.errors import WorldError
from guard.proxy.flowstate import FlowState, respond, state_of
from guard.proxy.offload import Offload
from guard.world.store import WorldStore

log = logging.getLogger("guard")


class AuditRecorder:
    def __init__(self, audit: AuditWriter, events: EventBuilder, worlds: WorldStore,
                 offload: Offload | None = None) -> None:
        self.audit = audit
        self.worlds = worlds  # guard.internal's live feed is each sandbox's event history
        self.offload = offload  # the feed is in Redis: publish in order, on the loop
        self._fed: asyncio.Future[None] | None = None
        self.events = events
        self.recorder = Recorder(audit, events, self._publish)
        # see every written event, after the live feed: the console line, metrics, the
        # web console. One that fails is logged and does not stop the others.
        self.observers: list[Callable[[dict[str, Any]], None]] = []
        self.mark: dict[str, Any] | None = None  # added to feed events (guard.gateway)

    def done(self) -> None:
        # Events still being built are written first; the shutdown checkpoint (with
        # --audit-key) then marks the end of an untruncated log.
        self.recorder.close()
        if self.offload is not None:
            self.offload.close()  # the feed's last events
        self.audit.close()

    def response(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        state = state_of(flow)
        if state is None or flow.response is None or state.recorded:
            return None
        return self._record(flow, state)  # mitmproxy awaits it: written before the answer

    def error(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        state = state_of(flow)
        if state is None or state.recorded:
            return None
        if state.error is None and flow.error is not None:
            state.error = flow.error.msg
        return self._record(flow, state)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        """Every WebSocket message, both ways, as an event of its own (redacted, cut at the
        body limit). A message that cannot be recorded ends the connection."""
        state = state_of(flow)
        if state is None or flow.websocket is None or not flow.websocket.messages:
            return
        message = flow.websocket.messages[-1]
        try:
            self.audit.write(self.events.message(
                state.request, state.decision.rule_id, from_client=message.from_client,
                content=message.content, text=message.is_text, time=message.timestamp))
        except Exception as e:
            log.error("guard: cannot record a WebSocket message, closing it: %s", e)
            message.drop()
            flow.kill()

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        state = state_of(flow)
        if state is None or state.recorded:
            return
        state.recorded = True
        d = state.decision
        try:
            self.recorder.flow(FlowRecord(state.request, d.rule_id, d.action, d.reason,
                                          started=state.started))
        except Exception as e:
            log.error("guard: cannot record a refused raw TCP connection: %s", e)

    def write_event(self, record: FlowRecord) -> dict[str, Any]:
        """Build, write and publish (guard.internal's live feed) one audit event. Also used
        by the SMTP sink for the messages it keeps. Raises AuditError when it cannot write."""
        return self.recorder.flow(record)

    async def record_async(self, record: FlowRecord) -> dict[str, Any]:
        """Write and publish the event of a flow guard answered itself (a large one built off
        the loop) for the fast path; with the feed in Redis, return once the event is in
        the live feed too, as :meth:`response` does. Raises AuditError when it cannot
        write."""
        self._fed = None
        written = await self.recorder.flow_async(record)
        later = self._fed_first()  # published just now, nothing in between: its future
        if later is not None:
            await later
        return written

    def _publish(self, event: dict[str, Any], line: bytes) -> None:
        if self.offload is not None:
            self._fed = self.offload.feed(lambda: self._feed(event, line))
        else:
            self._feed(event, line)
        for observe in self.observers:
            try:
                observe(event)
            except Exception:
                log.exception("guard: an observer of audit events failed")

    def _feed(self, event: dict[str, Any], line: bytes) -> None:
        try:
            internal_host.publish(self.worlds, event, self.mark, line)
        except WorldError as e:  # the log has the event; the live feed misses it (Redis away)
            log.warning("guard: event not in the live feed: %s", e)
        except Exception:
            log.exception("guard: event not in the live feed")

    def _fed_first(self) -> Coroutine[Any, Any, None] | None:
        """With the feed in Redis: wait (the loop serves others) until the event just
        published is in the live feed, so it is there before the answer reaches the
        client."""
        fed, self._fed = self._fed, None
        if fed is None:
            return None

        async def wait() -> None:
            await fed

        return wait()

    def _record(self, flow: http.HTTPFlow,
                state: FlowState) -> Coroutine[Any, Any, None] | None:
        """Write the flow's event now, or (a large one) return the coroutine that has it
        built off the event loop; mitmproxy awaits it before the answer goes out."""
        state.recorded = True
        resp = flow.response
        body: bytes | None = b""
        if resp is not None:
            body = None if resp.stream else (resp.get_content(strict=False) or b"")
        record = FlowRecord(
            request=state.request, rule_id=state.decision.rule_id,
            action=state.decision.action, reason=state.decision.reason,
            status=resp.status_code if resp else None,
            response_headers=list(resp.headers.items(multi=True)) if resp else [],
            response_body=body, upstream=flow.server_conn.timestamp_start is not None,
            started=state.started, duration_ms=(time.perf_counter() - state.t0) * 1000,
            changes=state.changes, error=state.error, policy=state.policy,
            request_seq=state.request_seq, fault=state.fault,
        )
        if self.recorder.offloads(record):
            return self._record_off_loop(flow, record)
        self._fed = None
        try:
            self.recorder.flow(record)
        except Exception as e:
            self._unrecorded(flow, e)
        return self._fed_first()

    async def _record_off_loop(self, flow: http.HTTPFlow, record: FlowRecord) -> None:
        try:
            await self.recorder.flow_async(record)
        except Exception as e:
            self._unrecorded(flow, e)
            return
        # published on the loop just now, nothing in between: its feed future is _fed
        later = self._fed_first()
        if later is not None:
            await later

    def _unrecorded(self, flow: http.HTTPFlow, e: Exception) -> None:
        """An unrecorded flow must not get its answer: fail closed."""
        _, answer = pipeline.unrecorded(e)
        resp = flow.response
        if resp is not None and not resp.stream:
            respond(flow, answer)
