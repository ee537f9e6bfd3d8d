"""The audit log: one JSON line per flow, hash-chained, secrets redacted."""

from guard.audit.writer import AuditWriter

__all__ = ["AuditWriter"]
