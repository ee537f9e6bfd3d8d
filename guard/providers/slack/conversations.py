"""Slack's ``conversations.*`` methods: list, open (direct and multi-person messages) and
info, over the sandbox's workspace (:mod:`.workspace`).

``conversations.open`` with one user opens (or finds) the bot's direct message with them,
``D`` + 10; with two to eight it opens a multi-person message of the bot and them (``G`` +
10, named ``mpdm-a--b--c-1`` after their handles, as Slack names them); with ``channel`` it
resumes a DM or multi-person message. History and replies: :mod:`.history`.
"""

from __future__ import annotations

from typing import Any

from guard.providers.slack.args import channel as named_channel
from guard.providers.slack.args import cursor, flag, limit, offset
from guard.providers.slack.handlers import SlackError, web_api
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
    exclude_archived = flag(args.get("exclude_archived"))
    channels = [c for c in ctx.world.list(CHANNELS) if _type(c) in types
                and not (exclude_archived and c.get("is_archived"))]
    size = limit(args.get("limit"), 100, 1000)
    start = offset(args.get("cursor"))
    page = channels[start:start + size]
    return {"channels": page, "response_metadata": {
        "next_cursor": cursor(start + size) if start + size < len(channels) else ""}}


@web_api
def open_conversation(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """conversations.open (``users``, or ``channel`` to resume; ``return_im``,
    ``prevent_creation``)."""
    users, ref = args.get("users"), args.get("channel")
    full = flag(args.get("return_im"))
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
    prevent = flag(args.get("prevent_creation"))
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
    return {"channel": named_channel(ctx, args.get("channel"))}


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


