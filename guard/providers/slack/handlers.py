"""Slack Web API (``https://slack.com/api/{method}``) and incoming webhooks.

Web API methods answer HTTP 200 always: ``{"ok": true, ...}`` or ``{"ok": false, "error":
"channel_not_found"}``, as Slack does. Arguments come from the query string, a form or a
JSON body (slack_sdk sends JSON for chat.postMessage and forms for others); the token from
``Authorization: Bearer`` or a ``token`` argument. Posted messages are kept per channel
(collection ``slack_messages``) so chat.update and chat.delete find them, and every posted
or edited message is an outbox record. Incoming webhooks: :mod:`guard.providers.slack.webhook`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guard import outbox
from guard.providers.slack.workspace import (
    Workspace,
    find_channel,
    find_im,
    find_user,
    im,
    workspace,
)
from guard.request import Response
from guard.synth.context import SimContext
from guard.synth.handlers import Handler, handler

MESSAGES = "slack_messages"


class SlackError(Exception):
    """An ``{"ok": false, "error": code}`` answer."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def arguments(ctx: SimContext) -> dict[str, Any]:
    """Query, form and JSON arguments merged (later sources win), as Slack reads them."""
    args: dict[str, Any] = dict(ctx.request.query)
    args.update(ctx.request.form_pairs)
    body = ctx.request.json
    if isinstance(body, dict):
        args.update(body)
    return args


Method = Callable[[SimContext, Workspace, dict[str, Any]], dict[str, Any]]


def web_api(method: Method) -> Handler:
    """Wrap a Web API method: check the token, turn :class:`SlackError` into ``ok: false``."""

    def run(ctx: SimContext) -> Response:
        args = arguments(ctx)
        header = ctx.request.header("authorization") or ""
        token = header[7:] if header.lower().startswith("bearer ") else args.get("token")
        try:
            if not token:
                raise SlackError("not_authed")
            if not str(token).startswith(("xoxb-", "xoxp-", "xoxa-", "xoxe.", "xoxc-")):
                raise SlackError("invalid_auth")
            data = method(ctx, workspace(ctx), args)
        except SlackError as e:
            return ctx.json(200, {"ok": False, "error": e.code})
        return ctx.json(200, {"ok": True, **data})

    run.__name__, run.__doc__ = method.__name__, method.__doc__
    return handler(run)


def _ts(ctx: SimContext) -> str:
    """Message timestamps: the clock's seconds + a per-sandbox sequence, unique and rising."""
    return f"{ctx.now}.{ctx.world.next('slack.ts') % 1_000_000:06d}"


def _target(ctx: SimContext, ref: Any) -> dict[str, Any]:
    """The channel a message goes to; a user id opens (or reuses) a direct message."""
    if not isinstance(ref, str) or not ref:
        raise SlackError("channel_not_found")
    channel = find_channel(ctx, ref)
    if channel is not None:
        return channel
    user = find_user(ctx, ref)
    if user is None:
        raise SlackError("channel_not_found")
    return find_im(ctx, user["id"]) or im(ctx, user["id"])


def _label(channel: dict[str, Any]) -> str:
    return f"#{channel['name']}" if channel.get("name") else f"@{channel.get('user')}"


def has_content(args: dict[str, Any]) -> bool:
    return any(args.get(k) for k in ("text", "blocks", "attachments"))


@web_api
def post_message(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """chat.postMessage"""
    channel = _target(ctx, args.get("channel"))
    if channel.get("is_archived"):
        raise SlackError("is_archived")
    if not has_content(args):
        raise SlackError("no_text")
    ts = _ts(ctx)
    message: dict[str, Any] = {
        "user": ws.bot_user_id, "type": "message", "ts": ts, "bot_id": ws.bot_id,
        "app_id": ws.app_id, "text": str(args.get("text") or ""), "team": ws.team_id,
        "bot_profile": {"id": ws.bot_id, "app_id": ws.app_id, "name": ws.bot_name,
                        "icons": {}, "deleted": False, "updated": ctx.now,
                        "team_id": ws.team_id},
    }
    for key in ("blocks", "attachments", "thread_ts", "reply_broadcast", "username",
                "icon_emoji", "icon_url"):
        if args.get(key):
            message[key] = args[key]
    ctx.world.put(MESSAGES, {"id": f"{channel['id']}/{ts}", "channel": channel["id"],
                             "message": message})
    _record(ctx, ws, channel, message, args)
    return {"channel": channel["id"], "ts": ts, "message": message}


@web_api
def update_message(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """chat.update"""
    channel = _target(ctx, args.get("channel"))
    stored = ctx.world.get(MESSAGES, f"{channel['id']}/{args.get('ts')}")
    if stored is None:
        raise SlackError("message_not_found")
    if not has_content(args):
        raise SlackError("no_text")
    message = stored["message"]
    message["text"] = str(args.get("text") or "")
    for key in ("blocks", "attachments"):
        if key in args:
            message[key] = args[key]
    message["edited"] = {"user": ws.bot_user_id, "ts": _ts(ctx)}
    ctx.world.put(MESSAGES, stored)
    _record(ctx, ws, channel, message, args, edit_of=message["ts"])
    return {"channel": channel["id"], "ts": message["ts"], "text": message["text"],
            "message": message}


@web_api
def delete_message(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """chat.delete"""
    channel = _target(ctx, args.get("channel"))
    ts = str(args.get("ts") or "")
    if not ctx.world.delete(MESSAGES, f"{channel['id']}/{ts}"):
        raise SlackError("message_not_found")
    return {"channel": channel["id"], "ts": ts}


@web_api
def user_info(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """users.info"""
    user = find_user(ctx, str(args.get("user") or ""))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user}


@web_api
def auth_test(ctx: SimContext, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """auth.test (Bolt and many bots call it first)."""
    return {"url": f"https://{ws.domain}.slack.com/", "team": ws.team_name,
            "user": ws.bot_name, "team_id": ws.team_id, "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id, "is_enterprise_install": False}


def _record(ctx: SimContext, ws: Workspace, channel: dict[str, Any], message: dict[str, Any],
            args: dict[str, Any], *, edit_of: str | None = None) -> None:
    extra: dict[str, Any] = {"channel_id": channel["id"], "ts": message["ts"],
                             "team_id": ws.team_id}
    for key in ("thread_ts", "blocks", "attachments"):
        if message.get(key):
            extra[key] = message[key]
    if edit_of is not None:
        extra["edit_of"] = edit_of
    outbox.record(ctx, outbox.Message(
        "slack", kind="chat", sender=str(args.get("username") or ws.bot_name),
        to=[_label(channel)], text=message["text"], provider_id=message["ts"], extra=extra))
