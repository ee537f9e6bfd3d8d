"""Compiled matchers: host patterns, path templates (:mod:`guard.rules.pathtemplate`) and
value predicates.

Compiled once when rules load; per request they only evaluate.

>>> HostPattern("*.stripe.com").matches("files.stripe.com")
True
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from guard.rules.model import ValueMatch
from guard.rules.pathtemplate import PathTemplate

__all__ = ["HostPattern", "PathTemplate", "Predicate", "compile_value", "norm"]

Predicate = Callable[[bool, Any], bool]
"""A value predicate takes (present, value) and says whether it holds."""


@dataclass(frozen=True)
class HostPattern:
    """``api.stripe.com`` (exact), ``*.stripe.com`` (any subdomain, not the apex), ``*``, or a
    pattern with ``*`` labels inside (``email.*.amazonaws.com``: each inner ``*`` is exactly one
    label, so one rule covers every AWS region without also covering ``s3.amazonaws.com``).

    >>> HostPattern("email.*.amazonaws.com").matches("email.eu-west-1.amazonaws.com")
    True
    >>> HostPattern("email.*.amazonaws.com").matches("email.amazonaws.com")
    False
    """

    pattern: str
    kind: str = field(default="", init=False, compare=False)  # exact|wildcard|labels|any
    specificity: int = field(default=0, init=False, compare=False)
    """Exact hosts beat inner-label patterns, which beat ``*.`` wildcards (longer first);
    ``*`` comes last."""
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = self.pattern
        if pattern == "*":
            kind, specificity = "any", 0
        elif "*" in pattern.removeprefix("*."):
            kind, specificity = "labels", 5_000 + len(pattern.replace("*", ""))
            object.__setattr__(self, "_regex", _labels_regex(pattern))
        elif pattern.startswith("*."):
            kind, specificity = "wildcard", len(pattern)
        else:
            kind, specificity = "exact", 10_000
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "specificity", specificity)

    def matches(self, host: str) -> bool:
        kind = self.kind
        if kind == "any":
            return True
        if self._regex is not None:
            return self._regex.match(host) is not None
        if kind == "wildcard":
            return host.endswith(self.pattern[1:])
        return host == self.pattern


def _labels_regex(pattern: str) -> re.Pattern[str]:
    head, rest = ("(?:[^.]+\\.)+", pattern[2:]) if pattern.startswith("*.") else ("", pattern)
    body = "\\.".join("[^.]+" if label == "*" else re.escape(label) for label in rest.split("."))
    return re.compile(f"^{head}{body}$")


def norm(value: Any) -> str:
    """Compare values as text, with JSON spellings for booleans and null."""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def compile_value(spec: Any) -> tuple[Predicate, str]:
    """Compile a matcher from a rule into a predicate and a human description."""
    if isinstance(spec, ValueMatch):
        return _compile_match(spec)
    if isinstance(spec, list):
        allowed = {norm(v) for v in spec}
        return (lambda present, v: present and norm(v) in allowed), f"in {sorted(allowed)}"
    want = norm(spec)
    return (lambda present, v: present and norm(v) == want), f"== {want!r}"


def _text_test(test: Callable[[str, str], bool], arg: str) -> Predicate:
    return lambda present, v: present and test(norm(v), arg)


def _compile_match(spec: ValueMatch) -> tuple[Predicate, str]:
    checks: list[Predicate] = []
    words: list[str] = []
    fields = spec.model_fields_set
    if "equals" in fields:
        p, d = compile_value(spec.equals)
        checks.append(p)
        words.append(d)
    if spec.in_ is not None:
        p, d = compile_value(list(spec.in_))
        checks.append(p)
        words.append(d)
    if spec.regex is not None:
        rx = re.compile(spec.regex)
        checks.append(lambda present, v: present and rx.search(norm(v)) is not None)
        words.append(f"~ /{spec.regex}/")
    for name, test in (
        ("prefix", str.startswith),
        ("suffix", str.endswith),
        ("contains", str.__contains__),
    ):
        arg = getattr(spec, name)
        if arg is not None:
            checks.append(_text_test(test, arg))
            words.append(f"{name} {arg!r}")
    if spec.present is not None:
        want_present = spec.present
        checks.append(lambda present, v: present is want_present)
        words.append("present" if want_present else "absent")
    if spec.not_ is not None:
        inner, d = _compile_match(spec.not_)
        checks.append(lambda present, v: not inner(present, v))
        words.append(f"not ({d})")
    description = " and ".join(words)
    if len(checks) == 1:
        return checks[0], description
    tests = tuple(checks)
    return (lambda present, v: all(c(present, v) for c in tests)), description
