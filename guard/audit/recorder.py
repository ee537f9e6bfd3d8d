"""Build, write and publish audit events so that no request content can stop one.

The recorder is what the proxy, the SMTP sink and guard's own components call; it
holds the one rule of the audit path: an event is written for every flow. When
the full event cannot be built (or serialized), the minimal one of
:meth:`~guard.audit.event.EventBuilder.fallback` is written in its place, and
the failure is logged. Only :class:`~guard.errors.AuditError` (the log cannot be
written at all) reaches the caller, which then fails closed.

>>> from guard.audit.writer import AuditWriter
>>> from guard.request import Request
>>> rec = Recorder(AuditWriter(None), EventBuilder())
>>> req = Request.build("GET", "https://x.test/a", headers={"x-bad": "\\udcff"})
>>> rec.flow(FlowRecord(req, "r", "block"))["request"]["headers"]
[['x-bad', '\\udcff']]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from guard.audit.event import EventBuilder, FlowRecord, system_event
from guard.audit.writer import AuditWriter
from guard.errors import AuditError

log = logging.getLogger("guard")

Publish = Callable[[dict[str, Any]], None]


class Recorder:
    """Writes the events of flows; ``publish`` sees each written event (the live feed)."""

    def __init__(self, writer: AuditWriter, builder: EventBuilder,
                 publish: Publish | None = None) -> None:
        self.writer = writer
        self.builder = builder
        self.publish = publish

    def flow(self, record: FlowRecord) -> dict[str, Any]:
        """A flow guard answered itself, or the end of an allowed one (``request_seq``
        set): one event. Raises AuditError when the log cannot be written."""
        if record.request_seq is not None:
            return self._record(record, self.builder.build_completion, "flow")
        return self._record(record, self.builder.build, "flow")

    def request(self, record: FlowRecord) -> dict[str, Any]:
        """The event of an allowed request, written before it is forwarded."""
        return self._record(record, self.builder.build_request, "request")

    def system(self, rule_id: str, action: str, reason: str, **extra: Any) -> dict[str, Any]:
        return self._write(system_event(rule_id, action, reason, **extra))

    def _record(self, record: FlowRecord, build: Callable[[FlowRecord], dict[str, Any]],
                kind: str) -> dict[str, Any]:
        try:
            event = build(record)
        except Exception as e:  # request content must never cost the flow its event
            log.exception("guard: audit event for rule %s could not be built in full; "
                          "writing a minimal one", record.rule_id)
            event = self.builder.fallback(record, e, kind=kind)
        try:
            return self._write(event)
        except AuditError:
            raise
        except Exception as e:  # not serializable: the log is unchanged, write the minimal
            log.exception("guard: audit event for rule %s could not be written in full; "
                          "writing a minimal one", record.rule_id)
            return self._write(self.builder.fallback(record, e, kind=kind))

    def _write(self, event: dict[str, Any]) -> dict[str, Any]:
        written = self.writer.write(event)
        if self.publish is not None:
            try:
                self.publish(written)
            except Exception:
                log.exception("guard: publishing an audit event to the live feed failed")
        return written
