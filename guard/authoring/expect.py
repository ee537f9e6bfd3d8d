"""Check a case's ``expect`` against what guard did: exact values or rule-style matchers.

A plain value must be equal, type included (``200`` is not ``"200"``, ``true`` is
not ``1``); a mapping made only of matcher keys (``regex``, ``prefix``,
``present``...) is a matcher, evaluated exactly as in rules.

>>> from guard.rules.model import CaseExpect
>>> expect = CaseExpect.model_validate({"status": 200, "body": {"id": {"prefix": "cus_"}}})
>>> for line in mismatches(expect, Seen("simulate", "r.x", 200, [], b'{"id": "ch_1"}')):
...     print(line)
body id: expected prefix 'cus_', got "ch_1"
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from guard.rules.matchers import Predicate, compile_value
from guard.rules.model import CaseExpect, ValueMatch
from guard.rules.paths import lookup, parse_path


@dataclass(frozen=True)
class Seen:
    """What guard did with a case's request: the decision and the response, if any."""

    action: str
    rule: str
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes

    def data(self) -> Any:
        """The body as JSON data, or as text when it is not JSON."""
        text = self.body.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            return text


def mismatches(expect: CaseExpect, seen: Seen) -> list[str]:
    """Every way ``seen`` differs from ``expect``; empty when the case passes."""
    out: list[str] = []
    if expect.action is not None and expect.action != seen.action:
        out.append(f"action: expected {expect.action}, got {seen.action}")
    if expect.rule is not None and expect.rule != seen.rule:
        out.append(f"rule: expected {expect.rule}, got {seen.rule}")
    wants_response = expect.status is not None or expect.body or expect.headers
    if wants_response and seen.status is None:
        out.append(f"response: expected one, got none (action {seen.action}: guard does not "
                   "answer, the request goes to the real host)")
        return out
    if expect.status is not None and expect.status != seen.status:
        out.append(f"status: expected {expect.status}, got {seen.status}")
    for name, want in (expect.headers or {}).items():
        present, value = _header(seen.headers, name)
        out.extend(_check(f"header {name}", want, present, value))
    if expect.body:
        data = seen.data()
        for path, want in expect.body.items():
            present, value = lookup(data, parse_path(path))
            out.extend(_check(f"body {path}", want, present, value))
    return out


def _check(label: str, want: Any, present: bool, value: Any) -> list[str]:
    test, describe = _compile(want)
    if test(present, value):
        return []
    return [f"{label}: expected {describe}, got {show(value) if present else 'nothing (absent)'}"]


def _compile(want: Any) -> tuple[Predicate, str]:
    if isinstance(want, ValueMatch):
        return compile_value(want)
    return (lambda present, v: present and same(v, want)), show(want)


def same(a: Any, b: Any) -> bool:
    """Equality that keeps JSON types apart: ``True`` is not ``1``, ``"1"`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def show(value: Any, limit: int = 120) -> str:
    """A value as JSON (so types show: "200" vs 200), shortened."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _header(headers: list[tuple[str, str]], name: str) -> tuple[bool, str | None]:
    for k, v in headers:
        if k.lower() == name.lower():
            return True, v
    return False, None
