"""Text from requests, made safe to print on a terminal.

An agent controls paths, headers, sandbox names and bodies. Printed raw, an escape
sequence in a path could move the cursor, erase a row of ``guard audit list`` or
forge one, and a right-to-left override could make ``evil.test/moc.etirps`` read as
something else. :func:`printable` shows every such character as a visible escape
instead: C0 and C1 controls, DEL, the bidirectional controls, zero-width characters
and lone surrogates (bytes that were not UTF-8, kept by the audit log as Python's
surrogate escapes). Everything else, other scripts included, is left as it is.

>>> printable("GET /a\\x1b[2Jb")
'GET /a\\\\x1b[2Jb'
>>> printable("evil\\u202egnp.exe"), printable("\\udcff"), printable("日本")
('evil\\\\u202egnp.exe', '\\\\xff', '日本')
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 (except nothing: tab and newline are escaped too, a row is one line), DEL, C1,
# zero-width and bidi controls, line/paragraph separators, BOM, lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{n - 0xDC00:02x}"
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}"


def printable(text: object) -> str:
    """``text`` (anything; None prints as an empty string) with every character that
    could change what a terminal shows replaced by a visible escape."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, s)


_UNSAFE_IN_JSON = re.compile(
    "[\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]")


def dumps(value: Any, **kwargs: Any) -> str:
    """JSON as ``json.dumps(value, ensure_ascii=False, ...)`` writes it (other scripts
    stay readable), with the characters :func:`printable` escapes written as ``\\uXXXX``
    escapes: the same JSON to a parser, nothing a terminal acts on. (C0 controls are
    always escaped by the encoder.)

    >>> dumps({"path": "/a\x1b[2J\u202e\x9b日本"})
    '{"path": "/a\\\\u001b[2J\\\\u202e\\\\u009b日本"}'
    >>> json.loads(dumps({"p": "\u202e"})) == {"p": "\u202e"}
    True
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
