"""The audit log: one JSON line per flow, hash-chained, secrets redacted.

Writing: ``event`` (FlowRecord -> event v1), ``redact`` + ``patterns`` (what never
reaches the log), ``writer`` (chain, checkpoints, rotation), ``signing`` (keys).
Reading: ``reader`` (files, lines), ``verify``, ``query`` (filters, summary),
``replay`` (re-decide) and ``send`` (re-send). Exports: ``har``, ``mitmexport``
(the one mitmproxy import outside the addon), ``report`` (HTML). Live: ``live``
(guard.internal).
"""

from guard.audit.writer import AuditWriter

__all__ = ["AuditWriter"]
