"""The audit log: one JSON line per flow, hash-chained, secrets redacted.

Writing: ``event`` (FlowRecord -> event v1), ``redact`` + ``patterns`` (what never
reaches the log), ``writer`` (chain, checkpoints, rotation), ``signing`` (keys).
Reading: ``reader`` (files, lines), ``verify``. The secret catalogue the redaction
uses is :mod:`guard.secret_patterns` (rules use it too). The mitmproxy flow-file
export is :mod:`guard.proxy.flowfile`. The offline tools
(query, replay, send, HAR and HTML exports) are :mod:`guard.forensics`; the live
guard.internal endpoint is :mod:`guard.internal_host`.
"""

from guard.audit.writer import AuditWriter

__all__ = ["AuditWriter"]
