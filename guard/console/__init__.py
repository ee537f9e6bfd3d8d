"""guard's live web console (issue 15): flows, worlds, the outbox and rules in a browser.

Served by the admin listener under ``/console`` (:mod:`guard.console.app`), behind a
login form and a session cookie (:mod:`guard.console.auth`), fed by the audit recorder
(:mod:`guard.console.flows`). docs/console.md says how to open it.
"""
