"""Turn pydantic validation errors into ``path:line:column: message`` problems.

Shared by rule files and case files, so both read the same way: the position
comes from the YAML node marks kept by :mod:`guard.rules.source`, and messages
are reworded where pydantic's wording would not tell a rule author what to do.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from guard.errors import Problem
from guard.rules.source import Located

# pydantic union member tags that appear in error locations but not in the file
_TAGS = frozenset({"str", "int", "float", "bool", "list", "ValueMatch", "value-match", "scalar",
                   "matcher", "exact"})


def validate_each[M: BaseModel](located: Located, model: type[M], raw: Any, where: tuple[Any, ...],
                  problems: list[Problem]) -> tuple[list[M], list[int]] | None:
    """Validate every item of the list at ``where`` on its own, so one bad item does not
    hide the problems of the others. Returns the valid items and their indexes, or None
    (with a problem) when ``raw`` is not a list."""
    if not isinstance(raw, list):
        problems.append(located.problem(where, f"{'.'.join(map(str, where))}: must be a list"))
        return None
    items: list[M] = []
    positions: list[int] = []
    for i, item in enumerate(raw):
        try:
            items.append(model.model_validate(item))
            positions.append(i)
        except ValidationError as e:
            found = validation_problems(located, e, prefix=(*where, i))
            raw_problems = getattr(model, "raw_problems", None)
            for loc, message in raw_problems(item) if raw_problems else ():
                path = ".".join(str(p) for p in (*where, i, *loc))
                found.append(located.problem((*where, i, *loc), f"{path}: {message}"))
            unique = {(p.line, p.column, p.message): p for p in found}
            problems.extend(unique.values())
    return items, positions


def validation_problems(located: Located, error: ValidationError,
                        prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """One problem per distinct (position, message) in ``error``."""
    out = []
    for err in error.errors():
        loc = prefix + tuple(err["loc"])
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        elif err["type"] == "literal_error" and loc and loc[-1] == "action":
            allowed = "simulate, block, allow or error" if "expect" in loc else \
                "simulate, block or allow"
            message = f"unknown action {err.get('input')!r}: use {allowed}"
        elif err["type"] == "string_pattern_mismatch" and loc and loc[-1] in ("id", "rule"):
            message = (f"rule id {err.get('input')!r} must be dotted lower-case words, "
                       "e.g. stripe.customers.create")
        loc = tuple(p for p in loc if not _is_tag(p))
        field_path = ".".join(str(p) for p in loc)
        out.append(located.problem(loc, f"{field_path}: {message}" if field_path else message,
                                   at_key=err["type"] == "extra_forbidden"))
    # one problem per position and message: unions report each member's failure
    unique = {(p.line, p.column, p.message): p for p in out}
    return list(unique.values())


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part in _TAGS)
