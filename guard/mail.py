"""Email addresses and MIME messages, read with the standard library's ``email`` package.

Shared by the email packs (SES raw messages, provider validation) and the SMTP sink, so
that every email lands in the outbox with the same fields however it was sent.

>>> split_addresses('Ann <ann@a.test>, bob@b.test')
['Ann <ann@a.test>', 'bob@b.test']
>>> valid_address("Ann <ann@a.test>"), valid_address("ann.a.test")
(True, False)
>>> m = parse_mime(b"From: a@a.test\\r\\nTo: b@b.test\\r\\nSubject: Hi\\r\\n\\r\\nHello\\r\\n")
>>> m.sender, m.to, m.subject, m.text
('a@a.test', ['b@b.test'], 'Hi', 'Hello\\n')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

from guard.outbox import Attachment

_ADDR = re.compile(r"^[^@\s<>(),;:\"]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def address_of(value: str) -> str:
    """The bare address of ``"Name <a@b.c>"`` (``a@b.c``)."""
    return parseaddr(value)[1]


def valid_address(value: str) -> bool:
    """Whether ``value`` (bare, or ``Name <addr>``) holds one well-formed address."""
    addr = address_of(value.strip())
    return bool(addr) and _ADDR.match(addr) is not None


def split_addresses(value: str | Iterable[str] | None) -> list[str]:
    """Comma-separated address lists (or lists of them) into single entries, names kept.

    Entries are split on commas outside quotes and angle brackets and otherwise kept as
    written, so a malformed address survives to be reported (``email.utils.getaddresses``
    silently drops or rewrites some, differently across Python versions).
    """
    if value is None:
        return []
    items = [value] if isinstance(value, str) else [str(v) for v in value]
    out: list[str] = []
    for item in items:
        out.extend(part for part in (p.strip() for p in _split(item)) if part)
    return out


def _split(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted, angle = False, 0
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle += 1
        elif ch == ">" and not quoted:
            angle = max(0, angle - 1)
        elif ch == "," and not quoted and angle == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


@dataclass
class MimeMessage:
    """The parts of a message the outbox keeps."""

    sender: str | None
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str | None
    text: str | None
    html: str | None
    attachments: list[Attachment] = field(default_factory=list)
    message_id: str | None = None


def parse_mime(raw: bytes) -> MimeMessage:
    """Parse an RFC 5322 message. Never raises on malformed input: what cannot be read is
    left empty (a sink must accept whatever a client sends)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return MimeMessage(
        sender=_header(msg, "from"),
        to=split_addresses(msg.get_all("to", [])),
        cc=split_addresses(msg.get_all("cc", [])),
        bcc=split_addresses(msg.get_all("bcc", [])),
        subject=_header(msg, "subject"),
        text=_body(msg, "plain"),
        html=_body(msg, "html"),
        attachments=_attachments(msg),
        message_id=_header(msg, "message-id"),
    )


def _header(msg: EmailMessage, name: str) -> str | None:
    try:
        value = msg.get(name)
    except (ValueError, IndexError):  # a header the parser cannot decode
        return None
    return str(value) if value is not None else None


def _body(msg: EmailMessage, subtype: str) -> str | None:
    try:
        part = msg.get_body(preferencelist=(subtype,))
        if part is None:
            return None
        content = part.get_content()
    except (KeyError, LookupError, ValueError):
        return None
    # Line ends are CRLF on the wire; the outbox keeps the text as written (LF).
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def _attachments(msg: EmailMessage) -> list[Attachment]:
    out: list[Attachment] = []
    parts = msg.iter_attachments() if msg.is_multipart() else iter(())
    for part in parts:
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else None
        out.append(Attachment(part.get_filename() or "(unnamed)", size,
                              part.get_content_type()))
    return out
