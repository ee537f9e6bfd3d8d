"""Decide recorded requests again under another rule set, without sending anything.

The request is rebuilt from the event: method, URL, headers and body as logged.
That is the *redacted* request: a rule that looks inside a secret (a header
value beyond its kept prefix, a password field) sees the marker instead, and a
truncated body is only its first part. Known key prefixes are kept on purpose
(``Bearer sk_live_[REDACTED:...]``) so rules about kinds of keys still replay.

The CI gate: a request that was blocked, simulated or failed and would now be
*allowed* (reach the real world) is a loosening.

>>> e = {"seq": 1, "method": "GET", "url": "https://x.test/a?b=1", "action": "block",
...      "rule": "guard.default-deny", "request": {"headers": [], "body": None}}
>>> request_from_event(e).query
(('b', '1'),)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from guard.audit.event import body_bytes
from guard.decision import Decision
from guard.engine import Engine
from guard.request import Request

# Events that never consulted the rules: replaying them says nothing about a rule set.
NOT_RULE_DECIDED = ("guard.internal", "guard.raw-tcp", "guard.audit-unavailable")
LOG_KEY = "_log"  # put on an event read from several writers' logs: which log it came from


@dataclass(frozen=True)
class Outcome:
    seq: int
    method: str
    url: str
    was_action: str
    was_rule: str
    now: Decision
    partial: bool  # the body was truncated in the log, so the replayed request is incomplete
    log: str = ""  # with several writers' logs: the one this seq is of (each numbers its own)

    @property
    def changed(self) -> bool:
        if self.now.rule_id != self.was_rule:
            return True
        # "error" is the action of a rule whose response failed; the same rule deciding
        # again is no change of decision.
        return self.was_action != "error" and self.now.action != self.was_action

    @property
    def loosened(self) -> bool:
        """Was kept inside the sandbox; would now be allowed out."""
        return self.was_action != "allow" and self.now.action == "allow"

    @property
    def tightened(self) -> bool:
        return self.was_action == "allow" and self.now.action != "allow"


def request_from_event(e: dict[str, Any]) -> Request:
    """The request an event records (redacted), ready for :meth:`Engine.decide`."""
    req = e.get("request") or {}
    headers = [(str(k), str(v)) for k, v in req.get("headers") or []]
    return Request.build(str(e.get("method", "GET")), str(e.get("url", "")), headers=headers,
                         body=body_bytes(req.get("body")), client=str(e.get("client", "")),
                         sandbox=str(e.get("sandbox", "default")))


def replay(events: Iterable[dict[str, Any]], engine: Engine) -> list[Outcome]:
    """The new decision for every rule-decided flow event."""
    out = []
    for e in events:
        if e.get("kind", "flow") != "flow" or e.get("rule") in NOT_RULE_DECIDED:
            continue
        req = request_from_event(e)
        body = (e.get("request") or {}).get("body")
        out.append(Outcome(
            seq=int(e.get("seq", 0)), method=req.method, url=str(e.get("url")),
            was_action=str(e.get("action")), was_rule=str(e.get("rule")),
            now=engine.decide(req), partial=bool(isinstance(body, dict) and body.get("truncated")),
            log=str(e.get(LOG_KEY, "")),
        ))
    return out
