"""Questions security staff ask of a log: which events match, and what happened overall.

>>> f = Filter(host="*.stripe.com", action=["block"])
>>> f.matches({"host": "api.stripe.com", "action": "block", "time": "2026-01-01T00:00:00.000Z"})
True
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from guard.audit.event import OUTBOX


@dataclass(frozen=True)
class Filter:
    """Every given condition must hold. Hosts, rules and sandboxes take shell globs
    (``*.stripe.com``, ``stripe.*``); statuses take ``404`` or a class like ``4xx``."""

    host: str | None = None
    action: list[str] = field(default_factory=list)
    rule: str | None = None
    status: str | None = None
    sandbox: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    upstream: bool | None = None
    kind: list[str] = field(default_factory=list)

    def matches(self, e: dict[str, Any]) -> bool:
        if self.kind and str(e.get("kind", "flow")) not in self.kind:
            return False
        if self.host and not fnmatch.fnmatchcase(str(e.get("host", "")), self.host.lower()):
            return False
        if self.action and e.get("action") not in self.action:
            return False
        if self.rule and not fnmatch.fnmatchcase(str(e.get("rule", "")), self.rule):
            return False
        if self.sandbox and not fnmatch.fnmatchcase(str(e.get("sandbox", "")), self.sandbox):
            return False
        if self.status and not _status_matches(e.get("status"), self.status):
            return False
        if self.upstream is not None and bool(e.get("upstream")) != self.upstream:
            return False
        if self.since or self.until:
            t = parse_time(str(e.get("time", "")))
            if (self.since and t < self.since) or (self.until and t >= self.until):
                return False
        return True


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is UTC. ``2026-01-01``, ``2026-01-01T10:00Z``."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


_AGO = re.compile(r"(\d+)\s*(s|m|h|d|w)", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
TIME_HELP = ("ISO 8601 (2026-01-01, 2026-01-01T10:00Z; UTC unless a zone is given), a time "
             "ago (90s, 15m, 2h, 3d, 1w), today, yesterday or now")


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """What ``--since`` and ``--until`` take: :data:`TIME_HELP`. Raises ValueError with a
    message saying what would be right.

    >>> now = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    >>> parse_when("2h", now).isoformat(), parse_when("yesterday", now).isoformat()
    ('2026-03-02T10:30:00+00:00', '2026-03-01T00:00:00+00:00')
    """
    now = now or datetime.now(UTC)
    word = text.strip().lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if word in ("now", "today", "yesterday"):
        return {"now": now, "today": midnight,
                "yesterday": midnight - timedelta(days=1)}[word]
    m = _AGO.fullmatch(word.removesuffix("ago").strip())
    if m:
        return now - timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2).lower()])
    try:
        return parse_time(text.strip())
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a time: give {TIME_HELP}") from None


def _status_matches(status: Any, want: str) -> bool:
    if status is None:
        return want.lower() in ("none", "-")
    if len(want) == 3 and want[1:].lower() == "xx":
        return str(status)[0] == want[0]
    return str(status) == want


def select(events: Iterable[dict[str, Any]], flt: Filter) -> list[dict[str, Any]]:
    return [e for e in events if flt.matches(e)]


def reached_real_world(e: dict[str, Any]) -> bool:
    """An allowed request whose upstream connection was made: it left the sandbox."""
    return e.get("action") == "allow" and bool(e.get("upstream"))


def endpoint(e: dict[str, Any]) -> str:
    """``METHOD host/path`` without the query: what an attempt was aimed at."""
    parts = urlsplit(str(e.get("url", "")))
    return f"{e.get('method')} {parts.netloc}{parts.path}"


def outbox_records(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outbox records from world changes, latest version of each, in first-seen order."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        for c in e.get("changes") or ():
            if c.get("collection") != OUTBOX:
                continue
            key = (str(e.get("sandbox")), str(c.get("id")))
            if c.get("op") == "delete":
                found.pop(key, None)
            else:
                found[key] = {"seq": e.get("seq"), "time": e.get("time"),
                              "sandbox": e.get("sandbox"), "rule": e.get("rule"),
                              "id": c.get("id"), "object": c.get("object")}
    return list(found.values())


def guard_event(e: dict[str, Any]) -> bool:
    """An event of guard's own (kind ``system``: a rule reload, an audit outage or
    repair), not a request."""
    return e.get("kind") == "system"


def summary(events: Iterable[dict[str, Any]], top: int = 10) -> dict[str, Any]:
    """Counts by action, host, rule and sandbox; the top blocked attempts; what was
    allowed out (and whether it connected); the outbox; guard's own events (rule
    reloads first among them), which are not counted as requests."""
    everything = list(events)
    own = [e for e in everything if guard_event(e)]
    events = [e for e in everything if not guard_event(e)]
    blocked = [e for e in events if e.get("action") in ("block", "error")]
    allowed = [e for e in events if e.get("action") == "allow"]
    out = Counter(endpoint(e) for e in allowed if reached_real_world(e))
    times = [str(e["time"]) for e in events if e.get("time")]
    return {
        "events": len(events),
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "by_action": dict(Counter(str(e.get("action")) for e in events).most_common()),
        "by_host": dict(Counter(str(e.get("host")) for e in events).most_common()),
        "by_rule": dict(Counter(str(e.get("rule")) for e in events).most_common()),
        "by_sandbox": dict(Counter(str(e.get("sandbox")) for e in events).most_common()),
        "top_blocked": [
            {"endpoint": ep, "rule": rule, "count": n}
            for (ep, rule), n in Counter((endpoint(e), str(e.get("rule")))
                                         for e in blocked).most_common(top)],
        "reached_real_world": {
            "count": sum(out.values()),
            "endpoints": [{"endpoint": ep, "count": n} for ep, n in out.most_common()],
            "seqs": [e.get("seq") for e in allowed if reached_real_world(e)],
        },
        "allowed_without_connecting": [e.get("seq") for e in allowed
                                       if not reached_real_world(e)],
        "outbox": len(outbox_records(events)),
        "guard_events": [{k: e.get(k) for k in ("seq", "time", "rule", "action", "reason")}
                         for e in own],
        "reloads": sum(1 for e in own if e.get("rule") == "guard.reload"),
    }
