"""Reading Slack Web API arguments as Slack does: flags, limits, timestamps, cursors and the
channel a method names. Mistakes are the method's :class:`~.handlers.SlackError`.

>>> flag("true"), flag(1), flag("no")
(True, True, False)
>>> offset(cursor(200))
200
"""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation
from typing import Any

from guard.providers.slack.handlers import SlackError
from guard.providers.slack.workspace import find_channel
from guard.synth.context import SimContext


def channel(ctx: SimContext, ref: Any) -> dict[str, Any]:
    """The channel ``ref`` names (by id or name; made on first reference in an open
    world), else ``channel_not_found``."""
    found = find_channel(ctx, ref) if isinstance(ref, str) and ref else None
    if found is None:
        raise SlackError("channel_not_found")
    return found


def flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def limit(value: Any, default: int, most: int) -> int:
    try:
        return max(1, min(most, int(value or default)))
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None


def timestamp(value: Any, error: str, default: Decimal) -> Decimal:
    if value in (None, ""):
        return default
    try:
        ts = Decimal(str(value))
    except InvalidOperation:
        raise SlackError(error) from None
    if not ts.is_finite() or ts < 0:
        raise SlackError(error)
    return ts


def cursor(position: int) -> str:
    return base64.b64encode(f"offset:{position}".encode()).decode()


def offset(value: Any) -> int:
    if not value:
        return 0
    try:
        return max(0, int(base64.b64decode(str(value)).decode().removeprefix("offset:")))
    except ValueError:
        raise SlackError("invalid_cursor") from None
