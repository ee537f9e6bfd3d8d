"""guard's SMTP sink: an ESMTP server that keeps every message in the outbox and relays
nothing. See :mod:`guard.smtp.sink`."""

from guard.smtp.sink import RULE_ID, SmtpSink

__all__ = ["RULE_ID", "SmtpSink"]
