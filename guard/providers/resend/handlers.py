"""Resend: ``POST /emails``, ``POST /emails/batch`` and ``GET /emails/{id}`` on api.resend.com.

A send answers 200 ``{"id": "<uuid>"}``; mistakes answer 422
``{"statusCode": 422, "name": "missing_required_field" | "validation_error", "message"}``.
Sent emails are kept (collection ``resend_emails``) so that retrieving one by id works,
and each send is an outbox record.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from guard import outbox
from guard.mail import split_addresses, valid_address
from guard.request import Response
from guard.synth.context import SimContext
from guard.synth.handlers import handler

COLLECTION = "resend_emails"
ADDRESS_FORMAT = ("The email address needs to follow the `email@example.com` or "
                  "`Name <email@example.com>` format.")


def _error(status: int, name: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "message": message, "name": name}


def _list(value: Any) -> list[str]:
    return split_addresses(value if isinstance(value, (str, list)) else None)


def check(email: Any) -> dict[str, Any] | None:
    """Resend's error for one email object, or None when it would be sent."""
    if not isinstance(email, dict):
        return _error(422, "validation_error", "Invalid request body.")
    for field in ("from", "to", "subject"):
        if not email.get(field):
            return _error(422, "missing_required_field", f"Missing `{field}` field.")
    if not valid_address(str(email["from"])):
        return _error(422, "validation_error", f"Invalid `from` field. {ADDRESS_FORMAT}")
    for field in ("to", "cc", "bcc", "reply_to"):
        if any(not valid_address(a) for a in _list(email.get(field))):
            return _error(422, "validation_error", f"Invalid `{field}` field. {ADDRESS_FORMAT}")
    if len(_list(email["to"])) > 50:
        return _error(422, "validation_error", "Too many recipients. The maximum is 50.")
    return None


def _send(ctx: SimContext, email: dict[str, Any]) -> str:
    email_id: str = ctx.ids.uuid()
    created = ctx.world.clock.now()
    to, cc, bcc = _list(email["to"]), _list(email.get("cc")), _list(email.get("bcc"))
    reply_to = _list(email.get("reply_to"))
    ctx.world.put(COLLECTION, {
        "object": "email", "id": email_id, "to": to, "from": email["from"],
        "created_at": created.strftime("%Y-%m-%d %H:%M:%S.%f+00"),
        "subject": email["subject"], "html": email.get("html"), "text": email.get("text"),
        "bcc": bcc or [None], "cc": cc or [None], "reply_to": reply_to or [None],
        "last_event": "scheduled" if email.get("scheduled_at") else "sent",
        "scheduled_at": email.get("scheduled_at"),
    })
    extra = {k: email[k] for k in ("tags", "scheduled_at", "headers") if email.get(k)}
    if reply_to:
        extra["reply_to"] = reply_to
    outbox.record(ctx, outbox.Message(
        "resend", sender=str(email["from"]), to=to, cc=cc, bcc=bcc,
        subject=str(email["subject"]), text=email.get("text"), html=email.get("html"),
        attachments=[_attachment(a) for a in email.get("attachments") or []
                     if isinstance(a, dict)],
        provider_id=email_id, extra=extra))
    return email_id


@handler
def send_email(ctx: SimContext) -> Response:
    email = ctx.request.json
    problem = check(email)
    if problem is not None:
        return ctx.json(problem["statusCode"], problem)
    return ctx.json(200, {"id": _send(ctx, email)})


@handler
def send_batch(ctx: SimContext) -> Response:
    """All or nothing, as Resend's batch endpoint: one invalid email fails the request."""
    emails = ctx.request.json
    if not isinstance(emails, list) or not emails:
        return ctx.json(422, _error(422, "validation_error", "Invalid request body."))
    if len(emails) > 100:
        return ctx.json(422, _error(422, "validation_error",
                                    "Too many emails. The maximum is 100."))
    for email in emails:
        problem = check(email)
        if problem is not None:
            return ctx.json(problem["statusCode"], problem)
    return ctx.json(200, {"data": [{"id": _send(ctx, email)} for email in emails]})


@handler
def get_email(ctx: SimContext) -> Response:
    email = ctx.world.get(COLLECTION, ctx.captures.get("id", ""))
    if email is None:
        return ctx.json(404, _error(404, "not_found", "Email not found"))
    return ctx.json(200, email)


def _attachment(a: dict[str, Any]) -> outbox.Attachment:
    content = a.get("content")
    size: int | None = None
    if isinstance(content, list):  # the Node SDK sends a Buffer as a list of bytes
        size = len(content)
    elif isinstance(content, str):
        try:
            size = len(base64.b64decode(content))
        except (binascii.Error, ValueError):
            size = None
    name = a.get("filename") or str(a.get("path") or "(unnamed)").rsplit("/", 1)[-1]
    return outbox.Attachment(str(name), size, a.get("content_type"))
