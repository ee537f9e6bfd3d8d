"""Read YAML keeping where every value came from, so errors can say ``file:line:column``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from guard.errors import Problem

Loc = tuple[int | str | float | bool, ...]


SHALLOW = 2
"""Positions down to this depth (a rule: ``("rules", 7)``) are recorded while parsing;
deeper ones only when a problem needs them (parsing again): a big pack has a position
for every value, and recording them all cost a third of its load time."""


@dataclass
class Located:
    """A parsed YAML document and the (line, column) of every value and key in it."""

    path: str
    data: Any
    marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    text: str | None = field(default=None, repr=False)  # kept while deep marks are unread

    def where(self, loc: Loc) -> tuple[int, int]:
        """The position of the deepest known node along ``loc`` (pydantic error locations
        carry extra tags, such as union member names, that are skipped)."""
        if len(loc) > SHALLOW:
            self._read_all_marks()
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
        if at_key and len(loc) > SHALLOW:
            self._read_all_marks()
        key_mark = self.key_marks.get(loc) if at_key else None
        line, col = key_mark if key_mark is not None else self.where(loc)
        return Problem(self.path, line, col, message)

    def _read_all_marks(self) -> None:
        text, self.text = self.text, None
        if text is None:
            return
        full = Located(self.path, None)
        try:
            _Builder(full, _FAST, deep=True).document(text)
        except yaml.YAMLError:  # parsed once already; keep what is known
            return
        self.marks, self.key_marks = full.marks, full.key_marks


def read_yaml(path: str, text: str) -> Located:
    """Parse ``text``; syntax errors, duplicate keys and bad values become problems, not
    exceptions.

    libyaml parses and the data is built straight from its events, recording each node's
    position on the way (about four times faster than composing nodes first: a
    10,000-rule pack parses in a fraction of a second). A file libyaml rejects is parsed
    again by the pure-Python parser, whose messages name the offending character.
    """
    located = Located(path, None, text=text)
    try:
        located.data = _Builder(located, _FAST).document(text)
    except yaml.YAMLError:
        located = Located(path, None)
        try:
            located.data = _Builder(located, yaml.SafeLoader, deep=True).document(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            message = " ".join(str(x) for x in (e.context, e.problem) if x)
            located.problems.append(Problem(path, line, col, f"invalid YAML: {message}"))
        except yaml.YAMLError as e:
            located.problems.append(Problem(path, 1, 1, f"invalid YAML: {e}"))
    return located


_FAST: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()
# A plain scalar starting with none of these is a string: no implicit type applies.
_TYPED_FIRST = frozenset(ch for ch in yaml.resolver.Resolver.yaml_implicit_resolvers if ch)
_SCALAR = yaml.ScalarEvent
MAX_DEPTH = 200
MAX_EXPANSION = 2_000_000
"""Nodes that aliases may add to a document (a few aliases can otherwise build billions)."""


class _Builder:
    """Python data from parser events, recording positions in ``located``."""

    def __init__(self, located: Located, loader: type[yaml.SafeLoader], *,
                 deep: bool = False) -> None:
        self.located = located
        self.marks = located.marks
        self.loader = loader
        self.mark_depth = 1 << 30 if deep else SHALLOW
        self.construct = yaml.constructor.SafeConstructor().construct_object
        self.scalars: dict[tuple[str, bool], Any] = {}
        self.anchors: dict[str, tuple[Any, int]] = {}  # value and its node count
        self.expanded = 0

    def document(self, text: str) -> Any:
        parser = self.loader(text)
        try:
            self.next = parser.get_event
            self.next()  # StreamStart
            if isinstance(self.next(), yaml.StreamEndEvent):
                return None
            data, _ = self.node(self.next(), (), 0)
            self.next()  # DocumentEnd
            event = self.next()
            if not isinstance(event, yaml.StreamEndEvent):
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream", None,
                    "but found another document", event.start_mark)
            return data
        finally:
            parser.dispose()

    def node(self, event: Any, loc: Loc | None, depth: int) -> tuple[Any, int]:
        """The value starting at ``event`` and how many nodes it holds. ``loc`` is None
        below the depth whose positions are recorded."""
        if loc is not None:
            mark = event.start_mark
            self.marks[loc] = (mark.line + 1, mark.column + 1)
        kind = type(event)
        if kind is _SCALAR:
            if event.anchor is None:
                return self.scalar(event), 1
            value, size = self.scalar(event), 1
        elif kind is yaml.AliasEvent:
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
            value, size = self.anchors[event.anchor]
            self.expanded += size
            if self.expanded > MAX_EXPANSION:
                raise yaml.composer.ComposerError(
                    None, None, f"aliases expand to more than {MAX_EXPANSION} values",
                    event.start_mark)
            return value, size
        elif depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        elif kind is yaml.MappingStartEvent:
            value, size = self.mapping(loc, depth)
        else:
            value, size = self.sequence(loc, depth)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, size)
        return value, size

    def mapping(self, loc: Loc | None, depth: int) -> tuple[dict[Any, Any], int]:
        out: dict[Any, Any] = {}
        size = 1
        record = loc is not None and depth < self.mark_depth
        while True:
            event = self.next()
            if type(event) is yaml.MappingEndEvent:
                return out, size
            key: Any = None
            problem = None
            if type(event) is _SCALAR:
                if event.tag is None and event.implicit[0] and event.value == "<<":
                    problem = "merge keys (<<) are not supported"
                else:
                    key = self.scalar(event)
            else:
                key, _ = self.node(event, None, depth + 1)
            if problem is None and (not isinstance(key, (str, int, float, bool)) or
                                    key is None):
                problem = "mapping keys must be scalars"
            if problem is None and key in out:
                problem = f"duplicate key {key!r}"
            if problem is not None:
                self.problem(event, problem)
                self.node(self.next(), None, depth + 1)
                continue
            key_loc: Loc | None = None
            if record:
                assert loc is not None
                key_loc = (*loc, key)
                mark = event.start_mark
                self.located.key_marks[key_loc] = (mark.line + 1, mark.column + 1)
            out[key], n = self.node(self.next(), key_loc, depth + 1)
            size += n

    def sequence(self, loc: Loc | None, depth: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        size = 1
        record = loc is not None and depth < self.mark_depth
        while True:
            event = self.next()
            if type(event) is yaml.SequenceEndEvent:
                return out, size
            child = (*loc, len(out)) if record and loc is not None else None
            value, n = self.node(event, child, depth + 1)
            out.append(value)
            size += n

    def scalar(self, event: Any) -> Any:
        value: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            plain = bool(event.implicit[0]) and tag is None
            if not plain or (value and value[0] not in _TYPED_FIRST):
                return value
            cached = self.scalars.get((value, plain), self)
            if cached is not self:
                return cached
            tag = _RESOLVER.resolve(yaml.ScalarNode, value, event.implicit)
            built = self.construct(yaml.ScalarNode(tag, value, event.start_mark,
                                                   event.end_mark))
            self.scalars[(value, plain)] = built  # str, int, float, bool, None, dates
            return built
        try:
            return self.construct(yaml.ScalarNode(tag, value, event.start_mark, event.end_mark,
                                                  event.style))
        except yaml.constructor.ConstructorError as e:
            self.problem(event, f"cannot read this value: {e.problem}")
            return None

    def problem(self, event: Any, message: str) -> None:
        mark = event.start_mark
        self.located.problems.append(
            Problem(self.located.path, mark.line + 1, mark.column + 1, message))
