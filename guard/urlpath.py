"""One form of a request path for matching, and which paths are too ambiguous to forward.

Servers disagree about paths: one collapses ``//``, another strips ``;jsessionid=``
parameters or a trailing dot, decodes ``%2F`` into a separator, or decodes overlong UTF-8.
When guard decides on one reading and the upstream server acts on another, ``/public/**``
allowed and ``/public/admin/**`` blocked lets ``/public/%2e%2e/admin/`` through. So:

- rules match :func:`normalize`'s form (RFC 3986: percent-encoded unreserved characters
  decoded, the hex of the others in upper case, dot segments removed), and an allowed
  request is forwarded in that same form: what was decided is what is sent;
- :func:`ambiguity` names what guard cannot put in one form (encoded ``/``, ``\\``, ``.``,
  ``%`` or ``;``, control characters, percent-encoding that is not UTF-8 such as overlong
  sequences, backslashes, ``;`` parameters, empty segments, segments ending in a dot or a
  space). Allowed requests with such paths are refused (``guard.ambiguous-path``) unless
  their rule says ``ambiguous_paths: allow``.

>>> normalize("/public/./a/../%61dmin/%7euser")
'/public/admin/~user'
>>> ambiguity("/public/%2e%2e/admin")
'an encoded dot (%2E)'
>>> ambiguity("/v1/customers/cus_123") is None
True
"""

from __future__ import annotations

import re

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# encoded bytes a server may decode into something that changes the path's structure
_ENCODED_REFUSED = {0x2F: "an encoded slash (%2F)", 0x5C: "an encoded backslash (%5C)",
                    0x2E: "an encoded dot (%2E)", 0x25: "a double encoding (%25)",
                    0x3B: "an encoded semicolon (%3B)"}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def normalize(path: str) -> str:
    """The form rules match and guard forwards: unreserved characters decoded, other
    escapes in upper case, dot segments removed (RFC 3986 sections 6.2.2 and 5.2.4).

    >>> normalize("/a/b/../../../c"), normalize("/a/%2f/b"), normalize("*")
    ('/c', '/a/%2F/b', '*')
    """
    if not path.startswith("/"):
        return path  # "*" (OPTIONS *) or something no rule can match as a path

    def unescape(m: re.Match[str]) -> str:
        byte = int(m.group(1), 16)
        return chr(byte) if byte in UNRESERVED else f"%{m.group(1).upper()}"

    return remove_dot_segments(_ESCAPE.sub(unescape, path))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, for an absolute path.

    >>> remove_dot_segments("/a/./b/../c/."), remove_dot_segments("/..")
    ('/a/c/', '/')
    """
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def ambiguity(path: str) -> str | None:
    """Why servers may read ``path`` differently from guard, or None.

    >>> ambiguity("/public//admin"), ambiguity("/public/admin;x/"), ambiguity("/a/admin./b")
    ('an empty segment (//)', 'a ; parameter', 'a segment ending in a dot or space')
    >>> ambiguity("/%c0%ae%c0%ae/etc"), ambiguity("/a\\\\b")
    ('percent-encoding that is not UTF-8 (overlong or invalid)', 'a backslash')
    """
    if not path.startswith("/"):
        return None if path == "*" else "a path that does not start with /"
    for ch in path:
        code = ord(ch)
        if code < 0x21 or code == 0x7F:
            return "a control character or space"
        if code > 0x7E:
            return "a raw non-ASCII character"
        if ch == "\\":
            return "a backslash"
    if _BAD_PERCENT.search(path):
        return "a % that is not followed by two hex digits"
    raw = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(path):
        raw += path[pos:m.start()].encode()
        byte = int(m.group(1), 16)
        if byte in _ENCODED_REFUSED:
            return _ENCODED_REFUSED[byte]
        if byte < 0x20 or byte == 0x7F:
            return "an encoded control character"
        raw.append(byte)
        pos = m.end()
    raw += path[pos:].encode()
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "percent-encoding that is not UTF-8 (overlong or invalid)"
    if ";" in path:
        return "a ; parameter"
    segments = decoded.split("/")[1:]
    for i, segment in enumerate(segments):
        if segment == "" and i < len(segments) - 1:
            return "an empty segment (//)"
        if segment not in (".", "..") and segment[-1:] in (".", " "):
            return "a segment ending in a dot or space"
    return None
