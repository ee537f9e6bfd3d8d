"""Amazon SES in any region (``email.{region}.amazonaws.com``), as boto3 sends it.

* v2 (client ``sesv2``, rest-json): ``POST /v2/email/outbound-emails`` with Simple, Raw or
  Template content; answers ``{"MessageId": ...}``; errors carry ``x-amzn-ErrorType``.
* v1 (client ``ses``, query protocol): ``POST /`` with ``Action=SendEmail`` or
  ``Action=SendRawEmail`` form fields (``Destination.ToAddresses.member.1=...``); answers
  XML ``<SendEmailResponse><SendEmailResult><MessageId>`` and ``<ErrorResponse>`` on errors.

Requests must carry a SigV4 ``Authorization`` header (any signature is accepted).
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from typing import Any

from guard import outbox
from guard.mail import address_of, parse_mime, valid_address
from guard.request import Response
from guard.synth.context import SimContext
from guard.synth.handlers import handler

XMLNS = "http://ses.amazonaws.com/doc/2010-12-01/"


class SesError(Exception):
    """A client error SES would answer: ``code`` and ``message`` as SES words them."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def region(host: str) -> str:
    """``email.eu-west-1.amazonaws.com`` -> ``eu-west-1``."""
    return host.split(".")[1] if host.count(".") >= 3 else "us-east-1"


def _message_id(ctx: SimContext) -> str:
    return f"0100{ctx.ids.hex(12)}-{ctx.ids.uuid()}-000000"


def _check_addresses(addresses: list[str], invalid: str) -> None:
    for a in addresses:
        if "@" not in a:
            raise SesError(invalid, "Missing final '@domain'")
        if not valid_address(a):
            raise SesError(invalid, f"Illegal address: {a}" if a else "Invalid email address .")


def _send(ctx: SimContext, api: str, *, sender: str | None, to: list[str], cc: list[str],
          bcc: list[str], subject: str | None, text: str | None, html: str | None,
          invalid: str, attachments: list[outbox.Attachment] | None = None,
          extra: dict[str, Any] | None = None) -> str:
    if not sender:
        raise SesError(invalid, "Missing required header 'From'.")
    if not (to or cc or bcc):
        raise SesError(invalid, "Missing required header 'To'.")
    _check_addresses([sender, *to, *cc, *bcc], invalid)
    message_id = _message_id(ctx)
    outbox.record(ctx, outbox.Message(
        "ses", sender=sender, to=to, cc=cc, bcc=bcc, subject=subject, text=text, html=html,
        attachments=attachments or [], provider_id=message_id,
        extra={"api": api, "region": region(ctx.request.host), **(extra or {})}))
    return message_id


def _unsigned(ctx: SimContext) -> bool:
    return not (ctx.request.header("authorization") or "").startswith("AWS4-HMAC-SHA256")


# v2: rest-json


@handler
def send_email_v2(ctx: SimContext) -> Response:
    request_id = ctx.ids.uuid()
    try:
        if _unsigned(ctx):
            raise SesError("MissingAuthenticationTokenException",
                           "Missing Authentication Token", 403)
        body = ctx.request.json
        if not isinstance(body, dict) or not isinstance(body.get("Content"), dict):
            raise SesError("BadRequestException", "Content is required.")
        message_id = _send_v2(ctx, body)
    except SesError as e:
        return ctx.json(e.status, {"message": e.message},
                        {"x-amzn-ErrorType": f"{e.code}:", "x-amzn-RequestId": request_id})
    return ctx.json(200, {"MessageId": message_id}, {"x-amzn-RequestId": request_id})


_TEXT: dict[str, Any] = {"Data": str, "Charset": str}
V2_SHAPE: dict[str, Any] = {
    "FromEmailAddress": str, "FromEmailAddressIdentityArn": str, "ReplyToAddresses": [str],
    "FeedbackForwardingEmailAddress": str, "ConfigurationSetName": str,
    "Destination": {"ToAddresses": [str], "CcAddresses": [str], "BccAddresses": [str]},
    "EmailTags": [{"Name": str, "Value": str}],
    "Content": {"Simple": {"Subject": _TEXT, "Body": {"Text": _TEXT, "Html": _TEXT}},
                "Raw": {"Data": str},
                "Template": {"TemplateName": str, "TemplateArn": str, "TemplateData": str}},
}


def check_shape(value: Any, shape: Any, where: str) -> None:
    """Raise SES's ``SerializationException`` where ``value`` is not of the JSON type
    SendEmail's shape gives (``null`` is an absent member; unknown members are ignored, as
    SES does)."""
    if value is None:
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise SesError("SerializationException", f"{where}: expected an object")
        for key, inner in shape.items():
            check_shape(value.get(key), inner, f"{where}.{key}" if where else key)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise SesError("SerializationException", f"{where}: expected a list")
        for i, item in enumerate(value):
            if item is None:
                raise SesError("SerializationException", f"{where}[{i}]: null in a list")
            check_shape(item, shape[0], f"{where}[{i}]")
    elif not isinstance(value, str):
        raise SesError("SerializationException", f"{where}: expected a string")


def _send_v2(ctx: SimContext, body: dict[str, Any]) -> str:
    check_shape(body, V2_SHAPE, "")
    dest = body.get("Destination") or {}
    to, cc, bcc = (list(dest.get(k) or []) for k in ("ToAddresses", "CcAddresses",
                                                     "BccAddresses"))
    content = body["Content"]
    extra: dict[str, Any] = {k: body[k] for k in ("ConfigurationSetName", "EmailTags")
                             if body.get(k)}
    sender = body.get("FromEmailAddress")
    if isinstance(content.get("Raw"), dict):
        return _send_raw(ctx, "v2", content["Raw"].get("Data"), [*to, *cc, *bcc], sender,
                         "BadRequestException", extra)
    if isinstance(content.get("Template"), dict):
        template = content["Template"]
        extra["template"] = {k: template[k] for k in ("TemplateName", "TemplateArn",
                                                      "TemplateData") if template.get(k)}
        return _send(ctx, "v2", sender=sender, to=to, cc=cc, bcc=bcc, subject=None, text=None,
                     html=None, invalid="BadRequestException", extra=extra)
    simple = content.get("Simple")
    if not isinstance(simple, dict):
        raise SesError("BadRequestException", "Content must be Simple, Raw or Template.")
    bodies = simple.get("Body") or {}
    return _send(ctx, "v2", sender=sender, to=to, cc=cc, bcc=bcc,
                 subject=(simple.get("Subject") or {}).get("Data"),
                 text=(bodies.get("Text") or {}).get("Data"),
                 html=(bodies.get("Html") or {}).get("Data"),
                 invalid="BadRequestException", extra=extra)


# v1: query protocol, XML answers


@handler
def unsupported_action(ctx: SimContext) -> Response:
    """Actions guard does not simulate, refused in SES's own XML so boto3 raises a readable
    ``ClientError`` (a guard JSON body would be an unparseable response to it)."""
    request_id = ctx.ids.uuid()
    action = next((v for k, v in ctx.request.form_pairs if k == "Action"), "")
    return _xml(403, _error_xml(SesError(
        "AccessDenied", f"guard does not simulate the SES action {action}; only SendEmail and "
        f"SendRawEmail are available in this sandboxed network (rule {ctx.rule_id})", 403),
        request_id), request_id)


@handler
def query_action(ctx: SimContext) -> Response:
    request_id = ctx.ids.uuid()
    fields = ctx.request.form_pairs
    action = next((v for k, v in fields if k == "Action"), "")
    try:
        if _unsigned(ctx):
            raise SesError("MissingAuthenticationToken",
                           "Request is missing Authentication Token", 403)
        if action == "SendEmail":
            message_id = _send_v1(ctx, dict(fields), fields)
        elif action == "SendRawEmail":
            form = dict(fields)
            message_id = _send_raw(ctx, "v1", form.get("RawMessage.Data"),
                                   _members(fields, "Destinations"), form.get("Source"),
                                   "InvalidParameterValue")
        else:
            raise SesError("InvalidAction", f"Could not find operation {action or '(none)'} "
                           "for version 2010-12-01")
    except SesError as e:
        return _xml(e.status, _error_xml(e, request_id), request_id)
    return _xml(200, _result_xml(action, {"MessageId": message_id}, request_id), request_id)


def _members(fields: tuple[tuple[str, str], ...], prefix: str) -> list[str]:
    """``Destination.ToAddresses.member.N`` values in N order."""
    pattern = re.compile(re.escape(prefix) + r"\.member\.(\d+)$")
    found = [(int(m.group(1)), v) for k, v in fields if (m := pattern.match(k))]
    return [v for _, v in sorted(found)]


def _send_v1(ctx: SimContext, form: dict[str, str], fields: tuple[tuple[str, str], ...]) -> str:
    extra: dict[str, Any] = {}
    if form.get("ConfigurationSetName"):
        extra["ConfigurationSetName"] = form["ConfigurationSetName"]
    return _send(ctx, "v1", sender=form.get("Source"),
                 to=_members(fields, "Destination.ToAddresses"),
                 cc=_members(fields, "Destination.CcAddresses"),
                 bcc=_members(fields, "Destination.BccAddresses"),
                 subject=form.get("Message.Subject.Data"),
                 text=form.get("Message.Body.Text.Data"),
                 html=form.get("Message.Body.Html.Data"),
                 invalid="InvalidParameterValue", extra=extra)


def _send_raw(ctx: SimContext, api: str, data: Any, envelope: list[str], sender: str | None,
              invalid: str, extra: dict[str, Any] | None = None) -> str:
    """A raw MIME message: headers say who sees it; envelope recipients that no To or Cc
    header names were blind copies."""
    mime = parse_mime(_b64(data))
    visible = {address_of(a).lower() for a in [*mime.to, *mime.cc]}
    hidden = [a for a in envelope if address_of(a).lower() not in visible]
    return _send(ctx, api, sender=sender or mime.sender, to=mime.to, cc=mime.cc,
                 bcc=[*mime.bcc, *hidden], subject=mime.subject, text=mime.text, html=mime.html,
                 attachments=mime.attachments, invalid=invalid, extra=extra)


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value or ""))
    except (binascii.Error, ValueError):
        raise SesError("InvalidParameterValue", "Invalid base64 in RawMessage.Data") from None


def _result_xml(action: str, result: dict[str, str], request_id: str) -> ET.Element:
    root = ET.Element(f"{action}Response", xmlns=XMLNS)
    wrapper = ET.SubElement(root, f"{action}Result")
    for name, value in result.items():
        ET.SubElement(wrapper, name).text = value
    ET.SubElement(ET.SubElement(root, "ResponseMetadata"), "RequestId").text = request_id
    return root


def _error_xml(e: SesError, request_id: str) -> ET.Element:
    root = ET.Element("ErrorResponse", xmlns=XMLNS)
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = "Sender"
    ET.SubElement(error, "Code").text = e.code
    ET.SubElement(error, "Message").text = e.message
    ET.SubElement(root, "RequestId").text = request_id
    return root


def _xml(status: int, root: ET.Element, request_id: str) -> Response:
    body = ET.tostring(root, encoding="unicode").encode()
    return Response(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)],
                    body)
