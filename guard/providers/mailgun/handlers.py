"""Mailgun Messages API: ``POST /v3/{domain}/messages`` (form or multipart fields) and
``POST /v3/{domain}/messages.mime`` (a whole MIME message in the ``message`` file part),
on api.mailgun.net and api.eu.mailgun.net.

Mailgun answers 200 ``{"id": "<...@domain>", "message": "Queued. Thank you."}``; invalid
requests get 400 ``{"message": "'to' parameter is missing"}`` and the like.
``o:testmode=yes`` is accepted and not delivered by Mailgun; the outbox keeps the attempt
with ``extra.test_mode``.

Open world (:mod:`guard.synth.openworld`): the sending domain in the path is one the
account set up outside the agent's doing, so a domain the world does not hold is an active
domain from its first use (collection ``mailgun_domains``, keyed by the lower-cased name).
In a strict world only the domains it holds can send; any other is Mailgun's 404
``Domain not found: <domain>``.
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

from guard import outbox
from guard.mail import parse_mime, split_addresses, valid_address
from guard.multipart import UploadedFile
from guard.request import Response
from guard.synth import openworld
from guard.synth.context import SimContext
from guard.synth.handlers import handler

QUEUED = "Queued. Thank you."
DOMAINS = "mailgun_domains"


def _error(ctx: SimContext, message: str) -> Response:
    return ctx.json(400, {"message": message})


def _values(ctx: SimContext, name: str) -> list[str]:
    """Every value of a form field (Mailgun takes repeated fields and comma lists)."""
    return [v for k, v in ctx.request.form_pairs if k == name]


def _files(ctx: SimContext, *names: str) -> list[UploadedFile]:
    return [v for k, v in ctx.request.multipart_fields
            if k in names and isinstance(v, UploadedFile)]


def _first(ctx: SimContext, name: str) -> str | None:
    values = _values(ctx, name)
    return values[0] if values else None


def _unknown_domain(ctx: SimContext) -> Response | None:
    """Mailgun's 404 when the path's domain is not the account's (a strict world)."""
    domain = ctx.captures.get("domain", "")

    def added() -> dict[str, Any]:
        return {"id": domain.lower(), "name": domain, "state": "active", "type": "custom",
                "created_at": format_datetime(ctx.world.clock.now(), usegmt=True),
                "spam_action": "disabled", "wildcard": False, "is_disabled": False,
                "web_scheme": "https", "smtp_login": f"postmaster@{domain}"}

    if openworld.referenced(ctx.world, ctx.options, DOMAINS, domain.lower(), added) is None:
        return ctx.json(404, {"message": f"Domain not found: {domain}"})
    return None


def _check_addresses(ctx: SimContext, field: str, addresses: list[str]) -> Response | None:
    if any(not valid_address(a) for a in addresses):
        return _error(ctx, f"'{field}' parameter is not a valid address. please check "
                      "documentation")
    return None


@handler
def send_message(ctx: SimContext) -> Response:
    """``/v3/{domain}/messages``: validate like Mailgun, queue into the outbox."""
    missing = _unknown_domain(ctx)
    if missing is not None:
        return missing
    sender = _first(ctx, "from")
    if not sender:
        return _error(ctx, "'from' parameter is missing")
    to = split_addresses(_values(ctx, "to"))
    if not to:
        return _error(ctx, "'to' parameter is missing")
    cc, bcc = split_addresses(_values(ctx, "cc")), split_addresses(_values(ctx, "bcc"))
    for field, addresses in (("from", [sender]), ("to", to), ("cc", cc), ("bcc", bcc)):
        problem = _check_addresses(ctx, field, addresses)
        if problem is not None:
            return problem
    text, html, template = _first(ctx, "text"), _first(ctx, "html"), _first(ctx, "template")
    if not (text or html or template or _first(ctx, "amp-html")):
        return _error(ctx, "Need at least one of 'text', 'html' or 'template' parameters "
                      "specified")
    attachments = [outbox.Attachment(f.filename or "(unnamed)", f.size, f.content_type)
                   for f in _files(ctx, "attachment", "inline")]
    return _queue(ctx, outbox.Message(
        "mailgun", sender=sender, to=to, cc=cc, bcc=bcc, subject=_first(ctx, "subject"),
        text=text, html=html, attachments=attachments))


@handler
def send_mime(ctx: SimContext) -> Response:
    """``/v3/{domain}/messages.mime``: ``to`` fields plus a MIME ``message`` file."""
    missing = _unknown_domain(ctx)
    if missing is not None:
        return missing
    to = split_addresses(_values(ctx, "to"))
    if not to:
        return _error(ctx, "'to' parameter is missing")
    problem = _check_addresses(ctx, "to", to)
    if problem is not None:
        return problem
    files = _files(ctx, "message")
    if not files:
        return _error(ctx, "'message' parameter is missing")
    mime = parse_mime(files[0].data)
    # The envelope (``to``) decides delivery; addresses only in it were blind copies.
    visible = {a.lower() for a in [*mime.to, *mime.cc]}
    hidden = [a for a in to if a.lower() not in visible]
    return _queue(ctx, outbox.Message(
        "mailgun", sender=mime.sender, to=mime.to or to, cc=mime.cc, bcc=hidden,
        subject=mime.subject, text=mime.text, html=mime.html, attachments=mime.attachments))


def _queue(ctx: SimContext, message: outbox.Message) -> Response:
    domain = ctx.captures.get("domain", "")
    message_id = ctx.ids.mailgun(domain)
    message.provider_id = message_id.strip("<>")
    message.extra = {"domain": domain, "host": ctx.request.host}
    tags = _values(ctx, "o:tag")
    if tags:
        message.extra["tags"] = tags
    if (_first(ctx, "o:testmode") or "").lower() in ("yes", "true", "1"):
        message.extra["test_mode"] = True
    outbox.record(ctx, message)
    return ctx.json(200, {"id": message_id, "message": QUEUED})
