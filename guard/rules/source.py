"""Read YAML keeping where every value came from, so errors can say ``file:line:column``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from guard.errors import Problem

Loc = tuple[int | str | float | bool, ...]


@dataclass
class Located:
    """A parsed YAML document and the (line, column) of every value and key in it."""

    path: str
    data: Any
    marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def where(self, loc: Loc) -> tuple[int, int]:
        """The position of the deepest known node along ``loc`` (pydantic error locations
        carry extra tags, such as union member names, that are skipped)."""
        best: Loc = ()
        current: Loc = ()
        for part in loc:
            candidate = (*current, part)
            if candidate in self.marks:
                current = candidate
                best = current
        return self.marks.get(best, (1, 1))

    def problem(self, loc: Loc, message: str, *, at_key: bool = False) -> Problem:
        """A problem at ``loc``; ``at_key`` points at the mapping key instead of its value."""
        key_mark = self.key_marks.get(loc) if at_key else None
        line, col = key_mark if key_mark is not None else self.where(loc)
        return Problem(self.path, line, col, message)


def read_yaml(path: str, text: str) -> Located:
    """Parse ``text``; syntax errors and duplicate keys become problems, not exceptions."""
    located = Located(path, None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(x) for x in (e.context, e.problem) if x)
        located.problems.append(Problem(path, line, col, f"invalid YAML: {message}"))
        return located
    except yaml.YAMLError as e:
        located.problems.append(Problem(path, 1, 1, f"invalid YAML: {e}"))
        return located
    if node is None:
        located.data = None
        return located
    located.data = _build(node, (), located)
    return located


_constructor = yaml.SafeLoader("")


def _build(node: yaml.Node, loc: Loc, located: Located) -> Any:
    located.marks[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                located.problems.append(_at(located, key_node, "merge keys (<<) are not supported"))
                continue
            key = _constructor.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                located.problems.append(_at(located, key_node, "mapping keys must be scalars"))
                continue
            if key in out:
                located.problems.append(_at(located, key_node, f"duplicate key {key!r}"))
                continue
            located.key_marks[(*loc, key)] = (key_node.start_mark.line + 1,
                                              key_node.start_mark.column + 1)
            out[key] = _build(value_node, (*loc, key), located)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), located) for i, item in enumerate(node.value)]
    return _constructor.construct_object(node, deep=True)


def _at(located: Located, node: yaml.Node, message: str) -> Problem:
    return Problem(located.path, node.start_mark.line + 1, node.start_mark.column + 1, message)
