"""Document answers (guard/openapi/documents.py): well-formed files whatever the title."""

from __future__ import annotations

import re

import pytest

from guard.openapi.documents import document


@pytest.mark.parametrize("title", [
    "quote qt_123", "a (b) c\\", ")) Tj ET BT (", "é\nendstream\nendobj", "x" * 10_000, ""])
def test_a_pdf_is_well_formed_and_its_text_cannot_break_out(title: str) -> None:
    pdf = document("application/pdf", title)
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
    table = pdf.split(b"xref\n", 1)[1].split(b"trailer", 1)[0].splitlines()[2:]
    for number, row in enumerate(table, 1):
        offset = int(row.split()[0])
        assert pdf[offset:].startswith(f"{number} 0 obj\n".encode())
    xref = int(re.search(rb"startxref\n(\d+)", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[xref:].startswith(b"xref\n")
    length = int(re.search(rb"/Length (\d+)", pdf).group(1))  # type: ignore[union-attr]
    stream = pdf.split(b"stream\n", 1)[1].split(b"\nendstream", 1)[0]
    assert len(stream) == length and len(stream) < 400
    assert re.fullmatch(rb"BT /F1 18 Tf 72 760 Td \([A-Za-z0-9 _./:-]*\) Tj ET", stream)


def test_other_documents_are_the_title_as_text() -> None:
    assert document("text/csv", "report\x00\r\n(x)") == b"reportx\n"
