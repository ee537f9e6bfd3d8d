"""SendGrid v3 Mail Send (``POST /v3/mail/send`` on api.sendgrid.com and api.eu.sendgrid.com).

SendGrid answers a valid send with 202, an empty body and an ``X-Message-Id`` header; in
mail-settings sandbox mode with 200 (valid, not queued; the outbox record says
``extra.test_mode``). Invalid requests get 400 with
``{"errors": [{"message", "field", "help"}]}`` listing every problem at once. Each
personalization is one email, so each becomes one outbox record.

Open world (:mod:`guard.synth.openworld`): SendGrid sends only from a verified Sender
Identity, set up in the account outside the agent's doing, so a from address the world does
not hold is a verified sender from its first use (collection ``sendgrid_senders``, keyed by
the lower-cased address). In a strict world only the senders it holds, or any address of a
domain it holds as ``@example.com`` (domain authentication), can send; any other is
SendGrid's 403 naming the Sender Identity requirement.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from guard import outbox
from guard.mail import valid_address
from guard.request import Response
from guard.synth import openworld
from guard.synth.context import SimContext
from guard.synth.handlers import handler

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
SENDERS = "sendgrid_senders"
UNVERIFIED = ("The from address does not match a verified Sender Identity. Mail cannot be sent "
              "until this error is resolved. Visit https://sendgrid.com/docs/for-developers/"
              "sending-email/sender-identity/ to see the Sender Identity requirements")

Problem = dict[str, Any]


def _problem(field: str | None, message: str, anchor: str | None) -> Problem:
    return {"message": message, "field": field, "help": f"{HELP}#{anchor}" if anchor else None}


def validate(body: dict[str, Any]) -> list[Problem]:
    """The problems SendGrid reports for a mail/send body, in SendGrid's wording."""
    problems: list[Problem] = []
    templated = bool(body.get("template_id"))
    people = body.get("personalizations")
    if not isinstance(people, list) or not people:
        problems.append(_problem(
            "personalizations", "The personalizations field is required and must have at least "
            "one personalization.", "-Personalizations-Errors"))
        people = []
    for i, p in enumerate(people):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to:
            problems.append(_problem(
                f"personalizations.{i}.to", "The to array is required for all personalization "
                "objects, and must have at least one email object with a valid email address.",
                "message.personalizations.to"))
            continue
        for kind in ("to", "cc", "bcc"):
            for j, rcpt in enumerate(p.get(kind) or []):
                email = rcpt.get("email") if isinstance(rcpt, dict) else None
                if not isinstance(email, str) or not valid_address(email):
                    problems.append(_problem(f"personalizations.{i}.{kind}.{j}.email",
                                             "Does not contain a valid address.",
                                             f"message.personalizations.{kind}"))
    sender = body.get("from")
    email = sender.get("email") if isinstance(sender, dict) else None
    if not isinstance(email, str) or not email:
        problems.append(_problem(
            "from.email", "The from object must be provided for every email send. It is an "
            "object that requires the email parameter, but may also contain a name parameter.  "
            'e.g. {"email" : "example@example.com"}  or {"email" : "example@example.com", '
            '"name" : "Example Recipient"}.', "message.from"))
    elif not valid_address(email):
        problems.append(_problem("from.email", "The from email does not contain a valid "
                                 "address.", "message.from"))
    every_subject = bool(people) and all(isinstance(p, dict) and p.get("subject")
                                         for p in people)
    if not templated and not body.get("subject") and not every_subject:
        problems.append(_problem(
            "subject", "The subject is required. You can get around this requirement if you use "
            "a template with a subject defined or if every personalization has a subject "
            "defined.", "message.subject"))
    content = body.get("content")
    if not templated and (not isinstance(content, list) or not content):
        problems.append(_problem(
            "content", "Unless a valid template_id is provided, the content parameter is "
            "required. There must be at least one defined content block. We typically suggest "
            "both text/plain and text/html blocks are included, but only one block is "
            "required.", "message.content"))
    for i, block in enumerate(content if isinstance(content, list) else []):
        if not isinstance(block, dict) or not block.get("value"):
            problems.append(_problem(f"content.{i}.value", "The content value must be a string "
                                     "at least one character in length.", "message.content"))
    return problems


@handler
def send_mail(ctx: SimContext) -> Response:
    """202 + X-Message-Id; one outbox record per personalization."""
    body = ctx.request.json
    if not isinstance(body, dict):
        return ctx.json(400, {"errors": [{"field": None, "message": "Bad Request",
                                          "help": None}]})
    problems = validate(body)
    if problems:
        return ctx.json(400, {"errors": problems})
    froms = [body["from"], *(p["from"] for p in body["personalizations"]
                             if isinstance(p, dict) and isinstance(p.get("from"), dict))]
    if any(not _verified(ctx, f) for f in froms):
        return ctx.json(403, {"errors": [{"message": UNVERIFIED, "field": "from",
                                          "help": None}]})
    message_id = ctx.ids.base62(22)
    texts = {b.get("type"): b.get("value") for b in body.get("content") or []}
    attachments = [_attachment(a) for a in body.get("attachments") or [] if isinstance(a, dict)]
    extra = {k: body[k] for k in ("template_id", "categories", "send_at", "asm", "reply_to")
             if body.get(k)}
    extra["host"] = ctx.request.host
    # Sandbox mode: SendGrid validates and answers 200 without queueing. The attempt is still
    # kept in the outbox (flagged), since the outbox is what the agent tried to send.
    sandbox_mode = _enabled(body, "sandbox_mode")
    if sandbox_mode:
        extra["test_mode"] = True
    for p in body["personalizations"]:
        sender = p.get("from") or body["from"]
        outbox.record(ctx, outbox.Message(
            "sendgrid", sender=_addr(sender), to=[_addr(r) for r in p.get("to") or []],
            cc=[_addr(r) for r in p.get("cc") or []], bcc=[_addr(r) for r in p.get("bcc") or []],
            subject=p.get("subject") or body.get("subject"), text=texts.get("text/plain"),
            html=texts.get("text/html"), attachments=attachments, provider_id=message_id,
            extra=extra | ({"dynamic_template_data": p["dynamic_template_data"]}
                           if p.get("dynamic_template_data") else {})))
    return Response(200 if sandbox_mode else 202, [("X-Message-Id", message_id)], b"")


def _verified(ctx: SimContext, sender: dict[str, Any]) -> bool:
    """Whether ``sender`` is a verified Sender Identity (made one on first use in an open
    world; in a strict world, held by the world, or of a domain it holds)."""
    email = str(sender.get("email") or "").lower()
    domain = "@" + email.rpartition("@")[2]
    if ctx.world.get(SENDERS, domain) is not None:
        return True

    def verified() -> dict[str, Any]:
        name = sender.get("name")
        return {"id": email, "sender_id": ctx.ids.number(1_000_000, 9_999_999),
                "nickname": str(name or email), "from_email": email,
                "from_name": str(name or ""), "reply_to": email, "verified": True,
                "locked": False, "created_at": ctx.now}

    return openworld.referenced(ctx.world, ctx.options, SENDERS, email, verified) is not None


def _enabled(body: dict[str, Any], setting: str) -> bool:
    settings = body.get("mail_settings")
    value = settings.get(setting) if isinstance(settings, dict) else None
    return isinstance(value, dict) and value.get("enable") is True


def _addr(obj: Any) -> str:
    if not isinstance(obj, dict):
        return str(obj)
    email, name = str(obj.get("email", "")), obj.get("name")
    return f"{name} <{email}>" if name else email


def _attachment(a: dict[str, Any]) -> outbox.Attachment:
    try:
        size: int | None = len(base64.b64decode(str(a.get("content", "")), validate=False))
    except (binascii.Error, ValueError):
        size = None
    return outbox.Attachment(str(a.get("filename") or "(unnamed)"), size, a.get("type"))
