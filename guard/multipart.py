"""A small, strict multipart/form-data parser (RFC 7578) for matching and the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart body: only its name, type and size travel further."""

    filename: str
    content_type: str
    size: int
    data: bytes = field(repr=False, default=b"")


def parse_multipart(content_type: str, body: bytes) -> tuple[tuple[str, str | UploadedFile], ...]:
    """Parse a multipart body into ordered (name, value) pairs; files become UploadedFile."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return ()
    out: list[tuple[str, str | UploadedFile]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            size = len(payload)
            out.append((name, UploadedFile(filename, part.get_content_type(), size, payload)))
        else:
            charset = part.get_content_charset() or "utf-8"
            out.append((name, payload.decode(charset, errors="replace")))
    return tuple(out)
