"""Slack incoming webhooks (``POST hooks.slack.com/services/T.../B.../secret``).

A webhook answers ``ok`` as text/html, or Slack's plain-text errors (``invalid_payload``,
``no_text``). The payload is JSON, or the legacy ``payload=<json>`` form field. Each post
is an outbox record addressed to the webhook (or the legacy ``channel`` it names).
"""

from __future__ import annotations

import json

from guard import outbox
from guard.providers.slack.handlers import has_content
from guard.request import Response
from guard.synth.context import SimContext
from guard.synth.handlers import handler


@handler
def incoming_webhook(ctx: SimContext) -> Response:
    body = ctx.request.json
    if body is None and ctx.request.form_pairs:  # legacy: payload=<json> form field
        try:
            body = json.loads(dict(ctx.request.form_pairs).get("payload") or "null")
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return _text(400, "invalid_payload")
    if not has_content(body):
        return _text(400, "no_text")
    team, bot = ctx.captures.get("team", ""), ctx.captures.get("bot", "")
    channel = body.get("channel")
    extra = {"webhook": f"{team}/{bot}"}
    extra.update({k: body[k] for k in ("blocks", "attachments") if body.get(k)})
    outbox.record(ctx, outbox.Message(
        "slack", kind="chat", sender=str(body.get("username") or f"webhook {bot}"),
        to=[str(channel) if channel else f"webhook:{team}/{bot}"],
        text=str(body.get("text") or ""), extra=extra))
    return _text(200, "ok")


def _text(status: int, text: str) -> Response:
    return Response(status, [("Content-Type", "text/html")], text.encode())
