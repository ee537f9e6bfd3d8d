"""Path templates: ``/v1/customers/{id}``, parsed once into segments the engine's route
index walks, with a whole-path regex for the slow path (``guard explain``).

A template is split at ``/`` into segments. Each segment is a literal (``customers``),
a capture (``{id}`` or ``{id:str}``: one non-empty segment; ``{n:int}``: ASCII digits) or
a mixed segment (``{id}.json``: a regex over that one segment). From the first segment
holding a ``{rest:path}`` capture, or at a trailing ``/**``, the template is a glob: the
rest of the path is matched as a whole. "Any rest" means any: a newline in a path is
matched like any other character (the pattern is DOTALL, and always matched in full).

>>> p = PathTemplate("/v1/customers/{id}")
>>> p.match("/v1/customers/cus_123")
{'id': 'cus_123'}
>>> p.match("/v1/customers") is None
True
>>> [s.kind for s in PathTemplate("/v1/{id}/f{n:int}.txt").segments]
['literal', 'literal', 'capture', 'mixed']
>>> PathTemplate("/files/{rest:path}").glob.depth, PathTemplate("/tree/**").glob.depth
(2, 2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(str|path|int))?\}")
_CONVERT = {"str": "[^/]+", "path": ".*", "int": "[0-9]+"}

CAPTURE_KEY = "{}"
INT_KEY = "{:int}"
"""Trie keys shared by every plain capture: ``{id}`` and ``{name}`` are one branch."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One ``/``-separated piece of a template, before any glob."""

    kind: str  # literal | capture | int | mixed
    text: str  # the template's text for this segment
    name: str = ""  # capture and int: the capture's name
    regex: re.Pattern[str] | None = None  # mixed: matched against the whole segment

    @property
    def key(self) -> str:
        """The trie branch: literal text, a shared capture key, or the mixed text (which
        starts with ``{`` or holds one, so it never equals a literal segment)."""
        if self.kind == "capture":
            return CAPTURE_KEY
        if self.kind == "int":
            return INT_KEY
        return self.text

    def accepts(self, segment: str) -> bool:
        if self.kind == "literal":
            return segment == self.text
        if self.kind == "capture":
            return segment != ""
        if self.kind == "int":
            return segment.isascii() and segment.isdigit()
        assert self.regex is not None
        return self.regex.fullmatch(segment) is not None


@dataclass(frozen=True, slots=True)
class Glob:
    """The rest of a template from segment ``depth`` on. ``regex`` is None for a plain
    trailing ``/**`` (any rest, or none); otherwise it must match the rest of the path
    from the start of segment ``depth``, which must exist."""

    depth: int
    regex: re.Pattern[str] | None


class PathTemplate:
    """``/v1/customers/{id}``; ``{rest:path}`` spans slashes; a trailing ``/**`` matches
    any rest. Raises ``ValueError`` for a template that cannot be parsed."""

    __slots__ = ("_regex", "_tail", "glob", "is_literal", "names", "segments", "specificity",
                 "template")

    def __init__(self, template: str) -> None:
        if not template.startswith("/"):
            raise ValueError(f"path template must start with '/': {template!r}")
        self.template = template
        body, self._tail = (template[:-3], True) if template.endswith("/**") else \
            (template, False)
        names: set[str] = set()
        segments: list[Segment] = []
        glob: Glob | None = None
        texts = body.split("/")
        for depth, text in enumerate(texts):
            if "{" not in text and "}" not in text:
                segments.append(_literal(text))
                continue
            pieces = _pieces(template, text, names)
            if any(isinstance(p, tuple) and p[1] == "path" for p in pieces):
                rest = "/".join(texts[depth:])
                for later in texts[depth + 1:]:
                    _pieces(template, later, names)  # placeholders checked as everywhere
                tail = "(?:/.*)?" if self._tail else ""
                glob = Glob(depth, re.compile(_pattern(template, rest, set()) + tail, re.DOTALL))
                break
            if len(pieces) == 1 and isinstance(pieces[0], tuple):
                name, kind = pieces[0]
                segments.append(Segment("capture" if kind == "str" else "int", text, name))
            else:
                segments.append(Segment("mixed", text, regex=re.compile(_pattern(template,
                                                                                  text, set()))))
        if glob is None and self._tail:
            glob = Glob(len(segments), None)
        self.segments = tuple(segments)
        self.glob = glob
        self.names = tuple(sorted(names))
        self.is_literal = glob is None and all(s.kind == "literal" for s in segments)
        # More literal characters (slashes included) means more specific; exact paths
        # beat templates.
        literal = len(body) - sum(len(m.group(0)) for m in _PARAM.finditer(body))
        self.specificity = (1 if self.is_literal else 0, literal)
        self._regex: re.Pattern[str] | None = None

    @property
    def regex(self) -> re.Pattern[str]:
        """The whole template as one regex (the slow path; the index never needs it)."""
        if self._regex is None:
            body = self.template[:-3] if self._tail else self.template
            self._regex = re.compile(_pattern(self.template, body, set()) +
                                     ("(?:/.*)?" if self._tail else ""), re.DOTALL)
        return self._regex

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None

    def __repr__(self) -> str:
        return f"PathTemplate({self.template!r})"


@lru_cache(maxsize=4096)
def _literal(text: str) -> Segment:
    """Literal segments are shared: ``v1`` is one object in every template that has it."""
    return Segment("literal", text)


Piece = str | tuple[str, str]
"""Literal text, or a capture as (name, converter)."""


def _pieces(template: str, text: str, names: set[str]) -> list[Piece]:
    """Split one segment (or any text) into literal text and captures; ``names`` collects
    capture names, so a name used twice is an error."""
    out: list[Piece] = []
    pos = 0
    for m in _PARAM.finditer(text):
        chunk = text[pos : m.start()]
        if "{" in chunk or "}" in chunk:
            raise ValueError(f"bad placeholder in path template {template!r}")
        if chunk:
            out.append(chunk)
        name = m.group(1)
        if name in names:
            raise ValueError(f"capture {{{name}}} appears twice in path template {template!r}")
        names.add(name)
        out.append((name, m.group(2) or "str"))
        pos = m.end()
    rest = text[pos:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"bad placeholder in path template {template!r}")
    if rest:
        out.append(rest)
    return out


def _pattern(template: str, text: str, names: set[str]) -> str:
    return "".join(re.escape(p) if isinstance(p, str) else f"(?P<{p[0]}>{_CONVERT[p[1]]})"
                   for p in _pieces(template, text, names))
