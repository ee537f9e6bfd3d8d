"""The forensics tools (list/show/summary, exports, replay) read the log the audit tests
record through a real guard: the same fixtures, so one recording serves both."""

from __future__ import annotations

from tests.audit.conftest import echo_upstream, log_copy, make_session, recorded_log

__all__ = ["echo_upstream", "log_copy", "make_session", "recorded_log"]
