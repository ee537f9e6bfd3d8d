"""Paths into response bodies for rule test cases: dotted (``data.0.id``, ``metadata[plan]``)
or JSONPath-lite (``$.data[0].id``, ``$['x-key']``, ``$.data[-1]``; ``$`` alone is the
whole body).

>>> lookup({"data": [{"id": "a"}, {"id": "b"}]}, parse_path("$.data[-1].id"))
(True, 'b')
>>> lookup({"metadata": {"plan": "pro"}}, parse_path("metadata.plan"))
(True, 'pro')
>>> lookup({"a": 1}, parse_path("a.b"))
(False, None)
"""

from __future__ import annotations

import re
from typing import Any

from guard.request import split_key

Part = str | int
"""A dict key (str; digits also index lists in dotted paths) or a list index (int)."""

_STEP = re.compile(
    r"""\.(?P<name>[^.\[\]]+)|\[(?P<index>-?\d+)\]|\[(?P<q>['"])(?P<key>.*?)(?P=q)\]"""
)


def parse_path(text: str) -> tuple[Part, ...]:
    """Parse a dotted or ``$``-rooted path. Raises ``ValueError`` saying what is wrong."""
    if not text:
        raise ValueError("empty path: use '$' for the whole body")
    if not text.startswith("$"):
        parts: list[Part] = []
        for dotted in text.split("."):
            if dotted == "":
                raise ValueError(f"bad path {text!r}: empty segment")
            parts.extend(p for p in split_key(dotted) if p != "")
        return tuple(parts)
    out: list[Part] = []
    pos = 1
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise ValueError(f"bad path {text!r} at {text[pos:]!r}: use $.name, $[0] or "
                             "$['name']")
        if m.group("name") is not None:
            out.append(m.group("name"))
        elif m.group("index") is not None:
            out.append(int(m.group("index")))
        else:
            out.append(m.group("key"))
        pos = m.end()
    return tuple(out)


def lookup(data: Any, parts: tuple[Part, ...]) -> tuple[bool, Any]:
    """``(present, value)`` at ``parts`` in nested dicts and lists."""
    node = data
    for part in parts:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and _index(part, len(node)) is not None:
            node = node[_index(part, len(node))]  # type: ignore[index]
        else:
            return False, None
    return True, node


def _index(part: Part, size: int) -> int | None:
    if isinstance(part, str):
        if not (part.isascii() and part.isdigit()):  # "²".isdigit(), but int() refuses it
            return None
        part = int(part)
    if -size <= part < size:
        return part
    return None
