"""Slack's ``conversations.history`` and ``conversations.replies``: what the bot posted in a
channel in the sandbox (collection ``slack_messages``). History shows top-level messages
newest first (thread replies stay in their thread; a thread's parent carries its
``reply_count``, ``reply_users`` and ``latest_reply``); replies show one thread, parent
first. Both page with ``limit`` and ``cursor`` and are bounded by ``oldest`` and
``latest`` (``inclusive`` takes the bounds too).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from guard.providers.slack.args import channel as named_channel
from guard.providers.slack.args import cursor, flag, limit, offset, timestamp
from guard.providers.slack.handlers import MESSAGES, SlackError, web_api
from guard.providers.slack.workspace import Workspace
from guard.synth.context import SimContext


@web_api
def conversation_history(ctx: SimContext, ws: Workspace, args: dict[str, Any]
                         ) -> dict[str, Any]:
    """conversations.history: the channel's top-level messages, newest first."""
    channel = named_channel(ctx, args.get("channel"))
    within = _window(args)
    kept = _kept(ctx, channel["id"])
    replies = _threads(kept)
    in_threads = {r["ts"] for thread in replies.values() for r in thread
                  if not r.get("reply_broadcast")}
    shown = [_with_replies(m, replies.get(m["ts"])) for m in reversed(kept)
             if m["ts"] not in in_threads and within(m)]
    data = _page(args, shown, 100, 999)
    return {**data, "pin_count": 0, "channel_actions_ts": None, "channel_actions_count": 0}


@web_api
def conversation_replies(ctx: SimContext, ws: Workspace, args: dict[str, Any]
                         ) -> dict[str, Any]:
    """conversations.replies: a thread, its parent first, then the replies oldest first."""
    channel = named_channel(ctx, args.get("channel"))
    ts = args.get("ts")
    if not isinstance(ts, str) or not ts:
        raise SlackError("invalid_arguments")
    stored = ctx.world.get(MESSAGES, f"{channel['id']}/{ts}")
    if stored is None:
        raise SlackError("thread_not_found")
    parent = stored["message"]
    root = parent.get("thread_ts") or parent["ts"]  # a reply's ts shows its whole thread
    if root != parent["ts"]:
        found = ctx.world.get(MESSAGES, f"{channel['id']}/{root}")
        parent = found["message"] if found else parent
    within = _window(args)
    thread = _threads(_kept(ctx, channel["id"])).get(parent["ts"], [])
    shown = [_with_replies(parent, thread)] + [r for r in thread if within(r)]
    return _page(args, shown, 1000, 1000)


def _kept(ctx: SimContext, channel_id: str) -> list[dict[str, Any]]:
    """The messages posted to a channel, oldest first (seeded ones without a Slack
    timestamp left out)."""
    kept = [m["message"] for m in ctx.world.list(MESSAGES) if m.get("channel") == channel_id]
    return [m for m in kept if _parses(m.get("ts"))]


def _threads(kept: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Thread replies by their parent's ts, oldest first."""
    replies: dict[str, list[dict[str, Any]]] = {}
    for message in kept:
        parent = message.get("thread_ts")
        if parent and parent != message["ts"]:
            replies.setdefault(parent, []).append(message)
    return replies


def _with_replies(message: dict[str, Any], thread: list[dict[str, Any]] | None
                  ) -> dict[str, Any]:
    """A thread's parent as Slack shows it: with the count and authors of its replies."""
    if not thread:
        return message
    users = sorted({str(r.get("user")) for r in thread})
    return {**message, "thread_ts": message["ts"], "reply_count": len(thread),
            "reply_users": users, "reply_users_count": len(users),
            "latest_reply": thread[-1]["ts"]}


def _window(args: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """``oldest`` < ts < ``latest`` (or equal to either with ``inclusive``)."""
    oldest = timestamp(args.get("oldest"), "invalid_ts_oldest", Decimal(0))
    latest = timestamp(args.get("latest"), "invalid_ts_latest", Decimal("Infinity"))
    inclusive = flag(args.get("inclusive"))

    def within(message: dict[str, Any]) -> bool:
        ts = Decimal(str(message["ts"]))
        return oldest < ts < latest or inclusive and ts in (oldest, latest)

    return within


def _page(args: dict[str, Any], shown: list[dict[str, Any]], default: int, most: int
          ) -> dict[str, Any]:
    size = limit(args.get("limit"), default, most)
    start = offset(args.get("cursor"))
    page, more = shown[start:start + size], start + size < len(shown)
    data: dict[str, Any] = {"messages": page, "has_more": more}
    if more:
        data["response_metadata"] = {"next_cursor": cursor(start + size)}
    return data


def _parses(ts: Any) -> bool:
    try:
        return Decimal(str(ts)).is_finite()
    except InvalidOperation:
        return False
