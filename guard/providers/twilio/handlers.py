"""Twilio Programmable Messaging (2010-04-01 API) under ``/Accounts/{AccountSid}/Messages``:
create, fetch and list, as JSON (``.json`` paths, what the SDK uses) or Twilio's XML.

A create answers 201 with ``sid`` = ``SM`` + 32 hex, ``status: queued`` (``accepted`` through
a Messaging Service), the request's fields echoed and RFC 2822 dates. Mistakes answer
Twilio's numbered errors (21211 invalid To, 21604 To required, ...). Twilio's magic test
numbers behave as with test credentials: To ``+15005550001`` is invalid, ``+15005550009``
cannot receive SMS, From ``+15005550001`` is invalid.

Open world (:mod:`guard.synth.openworld`): the From number is one of the account's own
phone numbers, bought outside the agent's doing, so a From number the world does not hold
becomes one on first use (:mod:`.numbers`). In a strict world only the numbers the world
holds can send, and another account's number never; any other is Twilio's 21606. A
``MessagingServiceSid`` is one of the account's Messaging Services the same way
(:mod:`.services`): malformed, 21705; unknown in a strict world or another account's,
21701. Alphanumeric sender ids (``From: ACME``) need no resource, as on Twilio (paid
accounts may use them without registering), but cannot reach +1 (US, Canada) numbers:
21612. Messages are the agent's own: an unknown sid is a 404 (20404) either way.
"""

from __future__ import annotations

import math
import re
from email.utils import format_datetime
from typing import Any

from guard import outbox
from guard.providers.twilio import numbers, services
from guard.providers.twilio.twiml import to_xml
from guard.request import Response
from guard.synth.context import SimContext
from guard.synth.handlers import handler

COLLECTION = "twilio_messages"
E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
CHANNELS = ("whatsapp:", "messenger:", "rcs:")
GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNO"
          "PQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€")
MAGIC_TO = {"+15005550001": (21211, "Invalid 'To' Phone Number: +15005550001"),
            "+15005550009": (21614, "'To' number is not a valid mobile number")}
MAGIC_VALID_FROM = "+15005550006"  # Twilio's test From number that always works
MAGIC_FROM = {"+15005550001": (21212, "Invalid From Number (caller ID): +15005550001")}


def _error(ctx: SimContext, status: int, code: int, message: str) -> Response:
    return _answer(ctx, status, ctx.render("twilio/error.yaml", code=code, message=message,
                                           status=status), "RestException")


def _answer(ctx: SimContext, status: int, data: dict[str, Any], kind: str) -> Response:
    """JSON for ``.json`` paths (the SDKs), Twilio's XML otherwise."""
    if ctx.request.path.endswith(".json"):
        return ctx.json(status, data)
    return Response(status, [("Content-Type", "application/xml")], to_xml(data, kind))


def _number(value: str) -> str:
    """Drop the formatting people type (spaces, dashes, parentheses) as Twilio does."""
    return re.sub(r"[\s\-().]", "", value)


def _channel(value: str) -> str:
    """``whatsapp:``, ``messenger:``, ``rcs:`` or ``""`` (SMS)."""
    return next((c for c in CHANNELS if value.startswith(c)), "")


def valid_number(value: str) -> bool:
    channel = next((c for c in CHANNELS if value.startswith(c)), "")
    return E164.match(_number(value[len(channel):])) is not None


def segments(body: str) -> int:
    """SMS segments: 160 GSM-7 characters (153 when split), or 70 UCS-2 (67 when split)."""
    single, multi = (160, 153) if set(body) <= GSM else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


def _field(ctx: SimContext, name: str) -> str | None:
    return next((v for k, v in ctx.request.form_pairs if k == name), None)


@handler
def create_message(ctx: SimContext) -> Response:
    account = ctx.captures["account"]
    to, sender = _field(ctx, "To"), _field(ctx, "From")
    service = _field(ctx, "MessagingServiceSid")
    body = _field(ctx, "Body")
    media = [v for k, v in ctx.request.form_pairs if k == "MediaUrl"]
    if not to:
        return _error(ctx, 400, 21604, "A 'To' phone number is required.")
    if not sender and not service:
        return _error(ctx, 400, 21603, "A 'From' phone number is required.")
    if not body and not media and not _field(ctx, "ContentSid"):
        return _error(ctx, 400, 21602, "Message body is required.")
    if not valid_number(to) or to in MAGIC_TO:
        code, message = MAGIC_TO.get(to, (21211, f"Invalid 'To' Phone Number: {to}"))
        return _error(ctx, 400, code, message)
    if sender and (not valid_number(sender) and not _alphanumeric(sender)
                   or sender in MAGIC_FROM):
        code, message = MAGIC_FROM.get(sender, (21212, "Invalid From Number (caller ID): "
                                                f"{sender}"))
        return _error(ctx, 400, code, message)
    if sender and _channel(sender) != _channel(to):
        return _error(ctx, 400, 21910, "Invalid From and To pair. From and To should be of "
                      "the same channel")
    if sender and not valid_number(sender) and _number(to).startswith("+1"):
        return _error(ctx, 400, 21612, f"The 'To' phone number: {to}, is not currently "
                      f"reachable using the 'From' phone number: {sender} via SMS.")
    if service:
        if not services.SID.fullmatch(service):
            return _error(ctx, 400, 21705, f"The Messaging Service Sid {service} is invalid.")
        found = services.referenced(ctx, account, service)
        if found is None or not services.owned_by(ctx, found, account):
            return _error(ctx, 400, 21701, "The Messaging Service does not exist")
    if (sender and valid_number(sender) and sender != MAGIC_VALID_FROM
            and _own_number(ctx, account, sender) is None):
        return _error(ctx, 400, 21606, f"The From phone number {sender} is not a valid, "
                      "SMS-capable inbound phone number or short code for your account.")
    if body and len(body) > 1600:
        return _error(ctx, 400, 21617, "The concatenated message body exceeds the 1600 "
                      "character limit.")
    sid = ctx.ids.twilio("SM")
    message = ctx.render(
        "twilio/message.yaml", account=account, sid=sid, to=to, sender=sender, service=service,
        body=body or "", num_media=len(media), segments=segments(body or ""),
        created=format_datetime(ctx.world.clock.now()),
        status="accepted" if service and not sender else "queued")
    ctx.world.put(COLLECTION, message, sid)
    kind = "chat" if to.startswith(("whatsapp:", "messenger:")) else "sms"
    outbox.record(ctx, outbox.Message(
        "twilio", kind=kind, sender=sender or service, to=[to], text=body,
        attachments=[outbox.Attachment(url.rsplit("/", 1)[-1] or url) for url in media],
        provider_id=sid, extra={"account_sid": account, "media_urls": media} if media
        else {"account_sid": account}))
    return _answer(ctx, 201, message, "Message")


def _own_number(ctx: SimContext, account: str, sender: str) -> dict[str, Any] | None:
    """The account's phone number ``sender`` (made on first use in an open world)."""
    channel = next((c for c in CHANNELS if sender.startswith(c)), "")
    return numbers.own_number(ctx, account, _number(sender[len(channel):]))


def _alphanumeric(sender: str) -> bool:
    """Alphanumeric sender ids: 1-11 letters, digits and spaces with at least one letter."""
    return re.fullmatch(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}", sender) is not None


@handler
def fetch_message(ctx: SimContext) -> Response:
    message = ctx.world.get(COLLECTION, ctx.captures["sid"])
    if message is None or message["account_sid"] != ctx.captures["account"]:
        return _error(ctx, 404, 20404, f"The requested resource {ctx.request.path} was not "
                      "found")
    return _answer(ctx, 200, message, "Message")


@handler
def list_messages(ctx: SimContext) -> Response:
    """Newest first, filtered by To and From, paged with PageSize and Page."""
    account, req = ctx.captures["account"], ctx.request
    wanted = {k: req.query_first(k) for k in ("To", "From")}
    messages = [m for m in reversed(ctx.world.list(COLLECTION))
                if m["account_sid"] == account
                and all(v is None or m[k.lower()] == v for k, v in wanted.items())]
    size = max(1, min(1000, _int(req.query_first("PageSize"), 50)))
    page = max(0, _int(req.query_first("Page"), 0))
    chunk = messages[page * size:(page + 1) * size]
    base = req.path
    filters = "".join(f"&{k}={v}" for k, v in wanted.items() if v is not None)

    def uri(n: int) -> str:
        return f"{base}?PageSize={size}&Page={n}{filters}"

    data = {
        "messages": chunk,
        "end": page * size + max(len(chunk) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if (page + 1) * size < len(messages) else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": page * size,
        "uri": uri(page),
    }
    return _answer(ctx, 200, data, "Messages")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
