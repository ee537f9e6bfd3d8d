"""Build, write and publish audit events so that no request content can stop one.

The recorder is what the proxy, the SMTP sink and guard's own components call; it
holds the one rule of the audit path: an event is written for every flow. When
the full event cannot be built (or serialized), the minimal one of
:meth:`~guard.audit.event.EventBuilder.fallback` is written in its place, and
the failure is logged. Only :class:`~guard.errors.AuditError` (the log cannot be
written at all) reaches the caller, which then fails closed.

Redaction is linear in what it reads, but a large event still costs milliseconds of
CPU per tens of kilobytes. The proxy calls the ``*_async`` methods: an event whose
request and response hold more than ``offload_over`` bytes is built, serialized and
written in one worker thread (one, so events keep their order; the writer is locked
against the few written from the event loop), and only published on the loop. The
event loop then serves every other sandbox while it is built; small events, the common
case, are written inline (a thread hop would cost more than they do).

>>> from guard.audit.writer import AuditWriter
>>> from guard.request import Request
>>> rec = Recorder(AuditWriter(None), EventBuilder())
>>> req = Request.build("GET", "https://x.test/a", headers={"x-bad": "\\udcff"})
>>> rec.flow(FlowRecord(req, "r", "block"))["request"]["headers"]
[['x-bad', '\\udcff']]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from guard.audit.event import EventBuilder, FlowRecord, system_event
from guard.audit.writer import AuditWriter
from guard.errors import AuditError

log = logging.getLogger("guard")

Publish = Callable[[dict[str, Any], bytes], None]  # a written event, and its line in the log
Written = tuple[dict[str, Any], bytes]
Build = Callable[[FlowRecord], dict[str, Any]]

OFFLOAD_OVER = 8 * 1024  # bytes of request and response content built off the event loop
CHANGE_SIZE = 1024  # what a changed world object counts for (its size is not known)


class Recorder:
    """Writes the events of flows; ``publish`` sees each written event (the live feed),
    with the line the log holds (its JSON: the feed keeps it rather than serialize
    again)."""

    def __init__(self, writer: AuditWriter, builder: EventBuilder,
                 publish: Publish | None = None, *, offload_over: int = OFFLOAD_OVER) -> None:
        self.writer = writer
        self.builder = builder
        self.publish = publish
        self.offload_over = offload_over
        self._worker: ThreadPoolExecutor | None = None

    def flow(self, record: FlowRecord) -> dict[str, Any]:
        """A flow guard answered itself, or the end of an allowed one (``request_seq``
        set): one event. Raises AuditError when the log cannot be written."""
        return self._published(self._built(record, *self._flow_kind(record)))

    def request(self, record: FlowRecord) -> dict[str, Any]:
        """The event of an allowed request, written before it is forwarded."""
        return self._published(self._built(record, self.builder.build_request, "request"))

    async def flow_async(self, record: FlowRecord) -> dict[str, Any]:
        """:meth:`flow`, built off the event loop when ``record`` is large."""
        return await self._offloaded(record, *self._flow_kind(record))

    async def request_async(self, record: FlowRecord) -> dict[str, Any]:
        """:meth:`request`, built off the event loop when ``record`` is large."""
        return await self._offloaded(record, self.builder.build_request, "request")

    def system(self, rule_id: str, action: str, reason: str, **extra: Any) -> dict[str, Any]:
        return self._write(system_event(rule_id, action, reason, **extra))

    def close(self) -> None:
        """Wait for the events being built off the loop, and stop the worker."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    def _flow_kind(self, record: FlowRecord) -> tuple[Build, str]:
        if record.request_seq is not None:
            return self.builder.build_completion, "flow"
        return self.builder.build, "flow"

    def offloads(self, record: FlowRecord) -> bool:
        """Whether the ``*_async`` methods build ``record``'s event off the event loop."""
        return content_size(record) > self.offload_over

    async def _offloaded(self, record: FlowRecord, build: Build, kind: str) -> dict[str, Any]:
        if not self.offloads(record):
            return self._published(self._built(record, build, kind))
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard-audit")
        loop = asyncio.get_running_loop()
        written = await loop.run_in_executor(self._worker, self._built, record, build, kind)
        return self._published(written)

    def _built(self, record: FlowRecord, build: Build, kind: str) -> Written:
        """Build and write the event (not published yet). Thread-safe."""
        try:
            event = build(record)
        except Exception as e:  # request content must never cost the flow its event
            log.exception("guard: audit event for rule %s could not be built in full; "
                          "writing a minimal one", record.rule_id)
            event = self.builder.fallback(record, e, kind=kind)
        try:
            return self.writer.write_line(event)
        except AuditError:
            raise
        except Exception as e:  # not serializable: the log is unchanged, write the minimal
            log.exception("guard: audit event for rule %s could not be written in full; "
                          "writing a minimal one", record.rule_id)
            return self.writer.write_line(self.builder.fallback(record, e, kind=kind))

    def _write(self, event: dict[str, Any]) -> dict[str, Any]:
        return self._published(self.writer.write_line(event))

    def _published(self, written: Written) -> dict[str, Any]:
        event, line = written
        if self.publish is not None:
            try:
                self.publish(event, line)
            except Exception:
                log.exception("guard: publishing an audit event to the live feed failed")
        return event


def content_size(record: FlowRecord) -> int:
    """How many bytes of request and response content an event of ``record`` reads.

    >>> from guard.request import Request
    >>> content_size(FlowRecord(Request.build("GET", "https://x.test/abc"), "r", "block"))
    4
    """
    req = record.request
    size = len(req.path) + len(req.raw_path) + len(req.body)
    size += sum(len(k) + len(v) for k, v in req.query)
    size += sum(len(k) + len(v) for k, v in req.headers)
    size += sum(len(k) + len(v) for k, v in record.response_headers)
    size += CHANGE_SIZE * sum(1 for c in record.changes if c.object is not None)
    return size + len(record.response_body or b"")
