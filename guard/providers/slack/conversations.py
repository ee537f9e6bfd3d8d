"""Slack's ``conversations.*`` methods: list, open (direct and multi-person messages), info,
history and replies, over the sandbox's workspace (:mod:`.workspace`).

``conversations.open`` with one user opens (or finds) the bot's direct message with them,
``D`` + 10; with two to eight it opens a multi-person message of the bot and them (``G`` +
10, named ``mpdm-a--b--c-1`` after their handles, as Slack names them); with ``channel`` it
resumes a DM or multi-person message. History holds what the bot posted in the sandbox:
top-level messages newest first (thread replies stay in their thread, which
``conversations.replies`` shows), paged with ``limit`` and ``cursor``, bounded by ``oldest``
and ``latest``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from guard.providers.slack.handlers import MESSAGES, SlackError, web_api
from guard.providers.slack.workspace import (
    CHANNELS,
    USERS,
    Workspace,
    find_channel,
    find_im,
    find_user,
    im,
    slack_id,
)
from guard.synth.context import SimContext

CHANNEL_TYPES = {"public_channel", "private_channel", "mpim", "im"}
MPIMS = "slack_mpims"  # members (sorted ids, comma-joined) -> the multi-person message's id
MAX_USERS = 8


@web_api
def list_conversations(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """conversations.list, paged with ``limit`` and ``cursor``."""
    types = {t.strip() for t in str(args.get("types") or "public_channel").split(",")}
    if not types <= CHANNEL_TYPES:
        raise SlackError("invalid_types")
    exclude_archived = _flag(args.get("exclude_archived"))
    channels = [c for c in ctx.world.list(CHANNELS) if _type(c) in types
                and not (exclude_archived and c.get("is_archived"))]
    limit = _limit(args.get("limit"), 100, 1000)
    start = _offset(args.get("cursor"))
    page = channels[start:start + limit]
    return {"channels": page, "response_metadata": {
        "next_cursor": _cursor(start + limit) if start + limit < len(channels) else ""}}


@web_api
def open_conversation(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """conversations.open (``users``, or ``channel`` to resume; ``return_im``,
    ``prevent_creation``)."""
    users, ref = args.get("users"), args.get("channel")
    full = _flag(args.get("return_im"))
    if not users and ref:
        channel = find_channel(ctx, ref) if isinstance(ref, str) else None
        if channel is None:
            raise SlackError("channel_not_found")
        if not (channel.get("is_im") or channel.get("is_mpim")):
            raise SlackError("method_not_supported_for_channel_type")
        return _opened(channel, full or bool(channel.get("is_mpim")), already=True)
    ids = _user_ids(users)
    if len(ids) > MAX_USERS:
        raise SlackError("too_many_users")
    people = [find_user(ctx, i) for i in ids]
    found = [p for p in people if p is not None]
    if len(found) < len(people):
        raise SlackError("user_not_found")
    if any(p.get("deleted") for p in found):
        raise SlackError("user_disabled")
    others = [p for p in found if p["id"] != ws.bot_user_id] or found
    prevent = _flag(args.get("prevent_creation"))
    if len(others) == 1:
        existing = find_im(ctx, others[0]["id"])
        if existing is None and prevent:
            raise SlackError("channel_not_found")
        channel = existing or im(ctx, others[0]["id"])
        return _opened(channel, full, already=existing is not None)
    key = ",".join(sorted(p["id"] for p in others))
    kept = ctx.world.get(MPIMS, key)
    existing = ctx.world.get(CHANNELS, kept["channel"]) if kept else None
    if existing is None and prevent:
        raise SlackError("channel_not_found")
    channel = existing or _mpim(ctx, ws, others, key)
    return _opened(channel, True, already=existing is not None)


@web_api
def conversation_info(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """conversations.info"""
    return {"channel": _channel(ctx, args.get("channel"))}


@web_api
def conversation_history(ctx: SimContext, ws: Workspace, args: dict[str, Any]
                         ) -> dict[str, Any]:
    """conversations.history: the channel's top-level messages, newest first."""
    channel = _channel(ctx, args.get("channel"))
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
    channel = _channel(ctx, args.get("channel"))
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
    oldest = _ts(args.get("oldest"), "invalid_ts_oldest", Decimal(0))
    latest = _ts(args.get("latest"), "invalid_ts_latest", Decimal("Infinity"))
    inclusive = _flag(args.get("inclusive"))

    def within(message: dict[str, Any]) -> bool:
        ts = Decimal(str(message["ts"]))
        return oldest < ts < latest or inclusive and ts in (oldest, latest)

    return within


def _page(args: dict[str, Any], shown: list[dict[str, Any]], default: int, most: int
          ) -> dict[str, Any]:
    limit = _limit(args.get("limit"), default, most)
    start = _offset(args.get("cursor"))
    page, more = shown[start:start + limit], start + limit < len(shown)
    data: dict[str, Any] = {"messages": page, "has_more": more}
    if more:
        data["response_metadata"] = {"next_cursor": _cursor(start + limit)}
    return data


def _parses(ts: Any) -> bool:
    try:
        return Decimal(str(ts)).is_finite()
    except InvalidOperation:
        return False


def _channel(ctx: SimContext, ref: Any) -> dict[str, Any]:
    channel = find_channel(ctx, ref) if isinstance(ref, str) and ref else None
    if channel is None:
        raise SlackError("channel_not_found")
    return channel


def _opened(channel: dict[str, Any], full: bool, *, already: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"no_op": True, "already_open": True} if already else {}
    data["channel"] = channel if full else {"id": channel["id"]}
    return data


def _user_ids(users: Any) -> list[str]:
    """``users`` as Slack reads it: comma-separated ids (or a JSON list), order kept,
    duplicates dropped."""
    if isinstance(users, list):
        parts = [u for u in users if isinstance(u, str)]
        if len(parts) < len(users):
            raise SlackError("user_not_found")
    elif isinstance(users, str):
        parts = users.split(",")
    else:
        parts = []
    ids = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not ids:
        raise SlackError("users_list_not_supplied")
    return ids


def _mpim(ctx: SimContext, ws: Workspace, people: list[dict[str, Any]], key: str
          ) -> dict[str, Any]:
    """A multi-person message of the bot and ``people``, named by their handles."""
    bot = ctx.world.get(USERS, ws.bot_user_id) or {"name": ws.bot_name}
    handles = [str(bot.get("name"))] + [str(p.get("name") or p["id"]) for p in people]
    name = "mpdm-" + "--".join(handles) + "-1"
    created = ctx.now
    channel: dict[str, Any] = {
        "id": slack_id(ctx, "G"), "name": name, "is_channel": False, "is_group": False,
        "is_im": False, "is_mpim": True, "is_private": True, "created": created,
        "is_archived": False, "is_general": False, "unlinked": 0, "name_normalized": name,
        "is_shared": False, "is_org_shared": False, "is_pending_ext_shared": False,
        "pending_shared": [], "context_team_id": ws.team_id, "updated": created * 1000,
        "parent_conversation": None, "creator": ws.bot_user_id, "is_ext_shared": False,
        "shared_team_ids": [ws.team_id], "pending_connected_team_ids": [],
        "is_member": True, "last_read": "0000000000.000000", "is_open": True,
        "topic": {"value": "Group messaging", "creator": ws.bot_user_id, "last_set": created},
        "purpose": {"value": "Group messaging with: " + " ".join(f"@{h}" for h in handles),
                    "creator": ws.bot_user_id, "last_set": created},
        "priority": 0, "num_members": len(people) + 1}
    ctx.world.put(CHANNELS, channel)
    ctx.world.put(MPIMS, {"id": key, "channel": channel["id"]})
    return channel


def _type(channel: dict[str, Any]) -> str:
    if channel.get("is_im"):
        return "im"
    if channel.get("is_mpim"):
        return "mpim"
    return "private_channel" if channel.get("is_private") else "public_channel"


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _limit(value: Any, default: int, most: int) -> int:
    try:
        return max(1, min(most, int(value or default)))
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None


def _ts(value: Any, error: str, default: Decimal) -> Decimal:
    if value in (None, ""):
        return default
    try:
        ts = Decimal(str(value))
    except InvalidOperation:
        raise SlackError(error) from None
    if not ts.is_finite() or ts < 0:
        raise SlackError(error)
    return ts


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        return max(0, int(base64.b64decode(str(cursor)).decode().removeprefix("offset:")))
    except ValueError:
        raise SlackError("invalid_cursor") from None
