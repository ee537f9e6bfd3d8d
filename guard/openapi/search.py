"""Stripe's search query language over stored objects, on the common fields.

``email:'a@b.c'``, ``name~'ali'`` (substring), ``metadata['plan']:'pro'``, ``amount>1000``,
``-status:'canceled'`` (negation), ``created>=1700000000``, joined by ``AND`` or by ``OR``
(not both in one query, as in Stripe).

>>> q = parse("email:'a@b.c' AND metadata['plan']:'pro'")
>>> matches(q, {"email": "a@b.c", "metadata": {"plan": "pro"}})
True
>>> matches(parse("amount>1000"), {"amount": 500})
False
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_CLAUSE = re.compile(
    r"""^\s*(?P<neg>-)?(?P<field>[a-z_][a-z0-9_.]*(?:\[['"](?P<key>[^'"]{1,200})['"]\])?)"""
    r"""\s*(?P<op>:|~|>=|<=|>|<)\s*(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<num>-?\d+(?:\.\d+)?)|"""
    r"""(?P<null>null))\s*$""")
MAX_QUERY = 1000


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class Clause:
    field: str
    key: str | None
    op: str
    value: str | float | None
    negated: bool


@dataclass(frozen=True)
class Query:
    clauses: tuple[Clause, ...]
    any: bool  # OR


def parse(text: str) -> Query:
    """Raises :class:`QueryError` for a query Stripe would refuse."""
    if not text.strip() or len(text) > MAX_QUERY:
        raise QueryError("empty or too long")
    has_and, has_or = " AND " in text, " OR " in text
    if has_and and has_or:
        raise QueryError("AND and OR cannot be combined")
    parts = text.split(" OR " if has_or else " AND ")
    clauses = []
    for part in parts:
        m = _CLAUSE.match(part)
        if m is None:
            raise QueryError(part)
        field = m.group("field").split("[", 1)[0]
        value: str | float | None
        if m.group("num") is not None:
            value = float(m.group("num"))
        elif m.group("null") is not None:
            value = None
        else:
            value = m.group("sq") if m.group("sq") is not None else m.group("dq")
        op = m.group("op")
        if op == "~" and (not isinstance(value, str) or len(value) < 3):
            raise QueryError("substring search needs at least 3 characters")
        clauses.append(Clause(field, m.group("key"), op, value, m.group("neg") is not None))
    return Query(tuple(clauses), has_or)


def matches(query: Query, obj: dict[str, Any]) -> bool:
    results = (_holds(c, obj) != c.negated for c in query.clauses)
    return any(results) if query.any else all(results)


def _holds(c: Clause, obj: dict[str, Any]) -> bool:
    node: Any = obj
    for part in c.field.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if c.key is not None:
        node = node.get(c.key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node = node.get("id")
    if c.value is None:
        return node is None
    if c.op in (">", "<", ">=", "<="):
        if not isinstance(node, (int, float)) or isinstance(node, bool) or \
                not isinstance(c.value, float):
            return False
        return {">": node > c.value, "<": node < c.value, ">=": node >= c.value,
                "<=": node <= c.value}[c.op]
    text = _text(node)
    if text is None:
        return False
    want = str(int(c.value)) if isinstance(c.value, float) and c.value.is_integer() \
        else str(c.value)
    if c.op == "~":
        return want.lower() in text.lower()
    return text.lower() == want.lower()


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None
