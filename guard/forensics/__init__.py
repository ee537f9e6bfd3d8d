"""Offline tools over audit logs, for security staff: nothing here runs in the proxy.

``query`` (filters, summary), ``replay`` (re-decide logged requests with today's
rules) and ``send`` (re-send them through a guard), and the exports ``har`` and
``report`` (a self-contained HTML page). The runtime half (writing, redaction,
signing, reading, verify) stays in :mod:`guard.audit`; the mitmproxy flow-file
export is :mod:`guard.proxy.flowfile` (it needs mitmproxy's own flow classes).
"""
