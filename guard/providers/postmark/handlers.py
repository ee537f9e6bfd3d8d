"""Postmark: ``POST /email`` and ``POST /email/batch`` on api.postmarkapp.com.

A send answers 200 ``{"To", "SubmittedAt", "MessageID", "ErrorCode": 0, "Message": "OK"}``;
a rejected one 422 ``{"ErrorCode": 300, "Message": ...}``. A batch always answers 200 with
one such result per message, in order. The token ``POSTMARK_API_TEST`` is Postmark's test
token (validated, never delivered); its sends are flagged ``extra.test_mode`` in the outbox.
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

TEST_TOKEN = "POSTMARK_API_TEST"
INVALID_REQUEST = 300
INVALID_JSON = 402
TOO_MANY_BATCH_MESSAGES = 410
BATCH_LIMIT = 500
RECIPIENT_LIMIT = 50


def _result(code: int, message: str) -> dict[str, Any]:
    return {"ErrorCode": code, "Message": message}


def check(email: Any) -> dict[str, Any] | None:
    """Postmark's error result for one email object, or None when it would be sent."""
    if not isinstance(email, dict):
        return _result(INVALID_JSON, "Received invalid JSON input.")
    sender = email.get("From")
    if not isinstance(sender, str) or not sender.strip():
        return _result(INVALID_REQUEST, "Invalid 'From' address: ''.")
    if not valid_address(sender):
        return _result(INVALID_REQUEST, f"Invalid 'From' address: '{sender}'.")
    everyone = []
    for field in ("To", "Cc", "Bcc"):
        for address in split_addresses(email.get(field)):
            if not valid_address(address):
                return _result(INVALID_REQUEST, f"Invalid '{field}' address: '{address}'.")
            everyone.append(address)
    if not everyone:
        return _result(INVALID_REQUEST, "Zero recipients specified")
    if len(everyone) > RECIPIENT_LIMIT:
        return _result(INVALID_REQUEST, f"Maximum of {RECIPIENT_LIMIT} recipients allowed per "
                       "email message")
    if not email.get("TextBody") and not email.get("HtmlBody"):
        return _result(INVALID_REQUEST, "Provide either email TextBody or HtmlBody or both.")
    return None


def _send(ctx: SimContext, email: dict[str, Any]) -> dict[str, Any]:
    """Validate one email and, when valid, put it in the outbox; returns Postmark's result."""
    problem = check(email)
    if problem is not None:
        return problem
    message_id = ctx.ids.uuid()
    extra: dict[str, Any] = {k: email[k] for k in ("Tag", "MessageStream", "Metadata", "ReplyTo")
                             if email.get(k)}
    if ctx.request.header("x-postmark-server-token") == TEST_TOKEN:
        extra["test_mode"] = True
    outbox.record(ctx, outbox.Message(
        "postmark", sender=email["From"], to=split_addresses(email.get("To")),
        cc=split_addresses(email.get("Cc")), bcc=split_addresses(email.get("Bcc")),
        subject=email.get("Subject"), text=email.get("TextBody"), html=email.get("HtmlBody"),
        attachments=[_attachment(a) for a in email.get("Attachments") or []
                     if isinstance(a, dict)],
        provider_id=message_id, extra=extra))
    now = ctx.world.clock.now()
    return {"To": email.get("To"), "SubmittedAt": now.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{now.microsecond:06d}0+00:00", "MessageID": message_id, **_result(0, "OK")}


@handler
def send_email(ctx: SimContext) -> Response:
    body = ctx.request.json
    if not isinstance(body, dict):
        return ctx.json(422, _result(INVALID_JSON, "Received invalid JSON input."))
    result = _send(ctx, body)
    return ctx.json(200 if result["ErrorCode"] == 0 else 422, result)


@handler
def send_batch(ctx: SimContext) -> Response:
    body = ctx.request.json
    if not isinstance(body, list):
        return ctx.json(422, _result(INVALID_JSON, "Received invalid JSON input."))
    if len(body) > BATCH_LIMIT:
        return ctx.json(422, _result(TOO_MANY_BATCH_MESSAGES, "Batch request is too large: "
                                     f"{len(body)} messages. Maximum is {BATCH_LIMIT}."))
    return ctx.json(200, [_send(ctx, email) for email in body])


def _attachment(a: dict[str, Any]) -> outbox.Attachment:
    try:
        size: int | None = len(base64.b64decode(str(a.get("Content", ""))))
    except (binascii.Error, ValueError):
        size = None
    return outbox.Attachment(str(a.get("Name") or "(unnamed)"), size, a.get("ContentType"))
