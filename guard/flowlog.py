"""One line per request, as mitmdump users expect: what ``guard run`` prints, and
``guard audit tail``.

A line is made from the audit event (already redacted: no secret reaches the terminal),
with every field an agent controls passed through :func:`~guard.textsafe.printable`::

    18:20:01.123 10.0.0.7 POST https://api.stripe.com/v1/customers simulate \
        stripe.customers.create 200 3.1ms

Fields: local time, sandbox, method, URL, action, rule, status, duration. On a terminal
the action and status are coloured (never when ``NO_COLOR`` is set); ``json`` gives one
JSON object per line instead. guard's own events (rule reloads, audit outages) print as a
line naming the rule and the reason.

>>> e = {"kind": "flow", "time": "2026-01-02T03:04:05.678Z", "sandbox": "s\\x1b[2J",
...      "method": "GET", "url": "https://x.test/", "action": "block",
...      "rule": "guard.default-deny", "status": 403, "duration_ms": 1.25}
>>> line(e, tz=UTC)
'03:04:05.678 s\\\\x1b[2J GET https://x.test/ block guard.default-deny 403 1.2ms'
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import IO, Any

from guard.textsafe import printable

URL_WIDTH = 200  # longer URLs are cut in the line (the log keeps them whole)
JSON_FIELDS = ("seq", "time", "sandbox", "client", "method", "url", "host", "action",
               "rule", "status", "duration_ms", "upstream", "reason", "error")

_COLORS = {"simulate": "36", "block": "33", "allow": "32", "error": "31;1", "system": "35"}


def color_wanted(out: IO[str]) -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError, OSError):  # no such method, or closed
        return False


def shows(event: dict[str, Any]) -> bool:
    """Whether the event gets a line: flows (an allowed one when it ends) and guard's own
    events; not the ``request`` half of an allowed flow nor checkpoints."""
    return event.get("kind", "flow") in ("flow", "system", "websocket")


def line(event: dict[str, Any], *, color: bool = False, tz: tzinfo | None = None) -> str:
    """The text line of one event."""
    when = _clock(event.get("time"), tz)
    kind = event.get("kind", "flow")
    if kind == "system":
        text = f"{when} guard {printable(event.get('rule'))} {printable(event.get('reason'))}"
        return _paint(text, "system") if color else text
    action = printable(event.get("action"))
    status = event.get("status")
    url = printable(event.get("url") or event.get("host"))
    if len(url) > URL_WIDTH:
        url = url[:URL_WIDTH - 1] + "…"
    parts = [
        when,
        printable(event.get("sandbox")) or "-",
        printable(event.get("method")) or "-",
        url or "-",
        _paint(action, action) if color else action,
        printable(event.get("rule")) or "-",
        _status(status, color),
        _duration(event.get("duration_ms")),
    ]
    if kind == "websocket":
        parts.insert(2, "ws")
    if event.get("upstream") and event.get("action") == "allow":
        parts.append("[upstream]")
    return " ".join(parts)


def json_line(event: dict[str, Any]) -> str:
    """The JSON line of one event: the fields of :data:`JSON_FIELDS` it has, ASCII only
    (so nothing in it can act on a terminal)."""
    return json.dumps({k: event[k] for k in JSON_FIELDS if k in event},
                      ensure_ascii=True, separators=(",", ":"))


class FlowLog:
    """An observer of written audit events that prints a line for each.

    ``fmt`` is ``text`` or ``json``; ``color`` None decides by the stream."""

    def __init__(self, out: IO[str] | None = None, fmt: str = "text",
                 color: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.fmt = fmt
        self.color = color_wanted(self.out) if color is None else color
        self.format: Callable[[dict[str, Any]], str] = (
            json_line if fmt == "json" else lambda e: line(e, color=self.color))

    def __call__(self, event: dict[str, Any]) -> None:
        if not shows(event):
            return
        try:
            self.out.write(self.format(event) + "\n")
            self.out.flush()
        except (OSError, ValueError):  # a closed or broken terminal must not stop guard
            pass


def _clock(time: Any, tz: tzinfo | None) -> str:
    try:
        t = datetime.fromisoformat(str(time).replace("Z", "+00:00"))
    except ValueError:
        return "--:--:--.---"
    local = t.astimezone(tz) if tz is not None else t.astimezone()
    return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def _status(status: Any, color: bool) -> str:
    if not isinstance(status, int):
        return "-"
    text = str(status)
    if not color:
        return text
    code = "32" if status < 300 else "33" if status < 500 else "31"
    return f"\x1b[{code}m{text}\x1b[0m"


def _duration(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "-"
    return f"{ms:.1f}ms" if ms < 1000 else f"{ms / 1000:.2f}s"


def _paint(text: str, kind: str) -> str:
    code = _COLORS.get(kind)
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


__all__ = ["FlowLog", "UTC", "color_wanted", "json_line", "line", "shows"]
