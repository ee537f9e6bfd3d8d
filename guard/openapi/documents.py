"""Answers that are documents, not JSON: an operation whose success response is a binary
string of a non-JSON media type (Stripe's ``GET /v1/quotes/{quote}/pdf``,
``application/pdf``) answers bytes of that type, so a client saving the file gets one a
viewer opens.

>>> pdf = document("application/pdf", "quote qt_123")
>>> pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
True
>>> document("text/csv", "report")
b'report\\n'
"""

from __future__ import annotations

from typing import Any

from guard.openapi.schema import merged, types
from guard.openapi.spec import Spec


def is_document(spec: Spec, media_type: str | None, schema: Any) -> bool:
    """The answer is a file: a non-JSON media type whose schema is a (binary) string."""
    if media_type is None or "json" in media_type or schema is None:
        return False
    node = merged(spec, schema)
    return "string" in types(node) and node.get("format") in ("binary", None)


def document(media_type: str, title: str) -> bytes:
    """A small well-formed file of ``media_type`` naming ``title`` (of which ASCII letters,
    digits, spaces and ``_-.:/`` are kept: ids and nouns, nothing a reader parses)."""
    text = "".join(c for c in title if c.isascii() and (c.isalnum() or c in " _-.:/"))[:200]
    if media_type == "application/pdf":
        return _pdf(text)
    return (text + "\n").encode()


def _pdf(text: str) -> bytes:
    """One A4 page with ``text`` on it, with a correct cross-reference table."""
    stream = f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)
