"""A single-file HTML report for auditors: figures, charts, blocked attempts, what was
allowed out, the outbox. No scripts, no external assets: it reads offline, in a
mail attachment or a ticket, and prints.

Charts are inline SVG computed here; the page is ``report.html.j2`` rendered by
Jinja2 with autoescaping on (every value in the log is untrusted agent data).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from guard import __version__
from guard.audit.verify import Verdict
from guard.forensics.query import (
    guard_event,
    outbox_records,
    parse_time,
    reached_real_world,
    summary,
)

ACTIONS = ("simulate", "block", "allow", "error")
COLORS = {"simulate": "#3b82f6", "block": "#dc2626", "allow": "#d97706", "error": "#7c3aed"}
MAX_ROWS = 500
_OUTBOX_FIELDS = ("provider", "to", "from", "subject", "channel", "text", "body")


def render(events: Sequence[dict[str, Any]], *, sources: Sequence[Path],
           verdict: Verdict | None, chains: Sequence[tuple[str, Verdict]] = (),
           logs: dict[tuple[Any, Any], str] | None = None) -> str:
    """The report. With several writers' logs, ``chains`` is each log's name and verdict
    (all are shown, not one), and ``logs`` names the log of each event by its (seq, time):
    each writer numbers its own log, so a seq alone names no event."""
    env = Environment(loader=FileSystemLoader(Path(__file__).parent),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    s = summary(events)
    events = [e for e in events if not guard_event(e)]  # requests only, from here on
    blocked = [e for e in events if e.get("action") in ("block", "error")]
    allowed = [e for e in events if e.get("action") == "allow"]
    actions = s["by_action"]
    figures = [
        ("total", "requests", s["events"]),
        ("simulate", "simulated", actions.get("simulate", 0)),
        ("block", "blocked", actions.get("block", 0)),
        ("allow", "allowed", actions.get("allow", 0)),
        ("real-world", "reached the real world", s["reached_real_world"]["count"]),
        ("error", "failed closed", actions.get("error", 0)),
        ("sandboxes", "sandboxes", len(s["by_sandbox"])),
        ("outbox", "outbox records", s["outbox"]),
    ]
    return env.get_template("report.html.j2").render(
        version=__version__, generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        sources=[str(p) for p in sources], verdict=verdict, summary=s, figures=figures,
        action_bars=bars([(a, actions.get(a, 0)) for a in ACTIONS], colors=COLORS),
        host_bars=bars(list(s["by_host"].items())[:12]),
        rule_bars=bars(list(s["by_rule"].items())[:12]),
        timeline=timeline(events), colors=COLORS,
        blocked=blocked[:MAX_ROWS], blocked_total=len(blocked),
        allowed=allowed[:MAX_ROWS], allowed_total=len(allowed),
        outbox=[_outbox_row(r) for r in outbox_records(events)][:MAX_ROWS],
        reached=reached_real_world, max_rows=MAX_ROWS,
        chains=list(chains) if len(chains) > 1 else [],
        chains_ok=sum(1 for _, v in chains if v.ok), where=_where(logs),
    )


def _where(logs: dict[tuple[Any, Any], str] | None) -> Any:
    """The seq cell of an event (or a record made from one): its seq, and with several
    logs the log's name before it."""
    def where(e: dict[str, Any]) -> str:
        seq = "" if e.get("seq") is None else str(e.get("seq"))
        if logs is None:
            return seq
        name = logs.get((e.get("seq"), e.get("time")))
        return f"{name} #{seq}" if name else seq
    return where


def bars(items: list[tuple[str, int]], colors: dict[str, str] | None = None,
         width: int = 420) -> list[dict[str, Any]]:
    """Horizontal bar geometry: label, value, bar width in px, colour."""
    top = max((v for _, v in items), default=0) or 1
    return [{"label": k, "value": v, "width": round(width * v / top, 1),
             "color": (colors or {}).get(k, "#475569"), "y": i * 26}
            for i, (k, v) in enumerate(items)]


def timeline(events: Sequence[dict[str, Any]], columns: int = 40) -> dict[str, Any]:
    """Requests over time as stacked columns (one colour per action)."""
    times = [(parse_time(str(e["time"])), str(e.get("action"))) for e in events
             if e.get("time")]
    if not times:
        return {"columns": [], "height": 0, "start": "", "end": ""}
    start, end = min(t for t, _ in times), max(t for t, _ in times)
    step = max((end - start) / columns, timedelta(seconds=1))
    buckets: list[Counter[str]] = [Counter() for _ in range(columns)]
    for t, action in times:
        buckets[min(columns - 1, int((t - start) / step))][action] += 1
    top = max((sum(b.values()) for b in buckets), default=1) or 1
    cols = []
    for i, b in enumerate(buckets):
        y, parts = 160.0, []
        for a in ACTIONS:
            h = 150 * b[a] / top
            if h:
                y -= h
                parts.append({"y": round(y, 1), "h": round(h, 1), "color": COLORS[a],
                              "title": f"{b[a]} {a}"})
        cols.append({"x": i * 15, "parts": parts, "total": sum(b.values())})
    return {"columns": cols, "start": start.strftime("%Y-%m-%d %H:%M:%S"),
            "end": end.strftime("%Y-%m-%d %H:%M:%S"), "max": top}


def _outbox_row(r: dict[str, Any]) -> dict[str, Any]:
    obj = r.get("object") if isinstance(r.get("object"), dict) else {}
    assert isinstance(obj, dict)
    shown = {k: _short(obj[k]) for k in _OUTBOX_FIELDS if k in obj}
    if not shown:
        shown = {k: _short(v) for k, v in list(obj.items())[:6]}
    return {**r, "fields": shown}


def _short(value: Any, limit: int = 200) -> str:
    """A field as a reader wants it: a list of recipients as ``a@b, c@d`` (not a Python
    list), anything else as text, cut at ``limit``."""
    if isinstance(value, (list, tuple)):
        text = ", ".join(_short(v, limit) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {_short(v, limit)}" for k, v in value.items())
    else:
        text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"
