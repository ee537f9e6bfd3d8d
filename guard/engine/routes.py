"""The route index of one host bucket: rules by method, then a trie over path segments.

Each (rule, path template) pair is a :class:`Route` filed in a trie node: a node's
children are its literal segments (a dict lookup), then capture segments (``{id}``,
``{n:int}``, shared by every template that has a capture there), then mixed segments
(``{id}.json``, a regex over that segment). Globs (``{rest:path}``, a trailing ``/**``)
and rules without a path hang on the node where their fixed part ends. A lookup walks
only the branches the request's segments can take, so its cost depends on the depth of
the path and the routes that match, not on how many rules the host has.

The trie is exact: every route a lookup returns matches the request's method and path,
and no matching route is missed. Which one wins is the engine's business: routes carry
a ``key`` that orders them by the documented precedence.

>>> from guard.rules.pathtemplate import PathTemplate
>>> table = RouteTable()
>>> table.add(Route(2, "retrieve", PathTemplate("/v1/items/{id}")), frozenset({"GET"}))
>>> table.add(Route(1, "special", PathTemplate("/v1/items/special")), None)
>>> path = "/v1/items/special"
>>> [r.rule for r in table.lookup("GET", path, path.split("/"))]
['special', 'retrieve']
>>> table.lookup("GET", "/v1/items/it_1", "/v1/items/it_1".split("/"))[0].captures(
...     "/v1/items/it_1", ["", "v1", "items", "it_1"])
{'id': 'it_1'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from guard.rules.pathtemplate import PathTemplate, Segment

_KEY = attrgetter("key")


@dataclass(eq=False, slots=True)
class Route:
    """One path of one rule (``path`` None: the rule matches every path)."""

    key: int  # smaller is tried first
    rule: Any  # the engine's rule object; the index never looks inside
    path: PathTemplate | None

    def captures(self, path: str, segments: list[str]) -> dict[str, str]:
        """The template's captures from a request path this route matched."""
        template = self.path
        if template is None or not template.names:
            return {}
        out: dict[str, str] = {}
        for depth, segment in enumerate(template.segments):
            kind = segment.kind
            if kind == "capture" or kind == "int":
                out[segment.name] = segments[depth]
            elif kind == "mixed":
                assert segment.regex is not None
                m = segment.regex.fullmatch(segments[depth])
                assert m is not None
                out.update(m.groupdict())
        glob = template.glob
        if glob is not None and glob.regex is not None:
            m = glob.regex.fullmatch(path[_offset(segments, glob.depth):])
            assert m is not None
            out.update(m.groupdict())
        return out


_LEAF: dict[str, _Node] = {}  # shared by every node without literal children; never written


class _Node:
    """A trie node; its lists are made when something is filed there (most stay None)."""

    __slots__ = ("ends", "globs", "literal", "patterns", "prefixes")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = _LEAF  # replaced by its own dict on the first child
        self.patterns: list[tuple[Segment, _Node]] | tuple[()] = ()
        self.ends: list[Route] | None = None  # templates that end here
        self.prefixes: list[Route] | None = None  # a trailing /** (or no path)
        self.globs: list[tuple[re.Pattern[str], Route]] | None = None

    def child(self, segment: Segment) -> _Node:
        if segment.kind == "literal":
            node = self.literal.get(segment.text)
            if node is None:
                if self.literal is _LEAF:
                    self.literal = {}
                node = self.literal[segment.text] = _Node()
            return node
        for existing, node in self.patterns:
            if existing.key == segment.key:
                return node
        node = _Node()
        # plain captures are the cheapest test; mixed segments (regexes) come last
        self.patterns = sorted([*self.patterns, (segment, node)],
                               key=lambda p: p[0].kind == "mixed")
        return node


class _Trie:
    def __init__(self) -> None:
        self.root = _Node()
        self.size = 0

    def add(self, route: Route) -> None:
        self.size += 1
        node = self.root
        template = route.path
        glob = None
        if template is not None:
            for segment in template.segments:
                node = node.child(segment)
            glob = template.glob
        if glob is not None and glob.regex is not None:
            if node.globs is None:
                node.globs = []
            node.globs.append((glob.regex, route))
        elif template is None or glob is not None:  # no path, or a trailing /**
            if node.prefixes is None:
                node.prefixes = []
            node.prefixes.append(route)
        else:
            if node.ends is None:
                node.ends = []
            node.ends.append(route)

    def lookup(self, path: str, segments: list[str], out: list[Route]) -> None:
        end = len(segments)
        node = self.root
        depth = 0
        pending: list[tuple[_Node, int]] | None = None  # other branches still to walk
        while True:
            if node.prefixes:
                out.extend(node.prefixes)
            if depth == end:
                if node.ends:
                    out.extend(node.ends)
            else:
                if node.globs:
                    rest = path[_offset(segments, depth):]
                    out.extend(route for regex, route in node.globs if regex.fullmatch(rest))
                segment = segments[depth]
                for pattern, child in node.patterns:
                    if pattern.accepts(segment):
                        if pending is None:
                            pending = []
                        pending.append((child, depth + 1))
                literal = node.literal.get(segment)
                if literal is not None:
                    node = literal
                    depth += 1
                    continue
            if not pending:
                return
            node, depth = pending.pop()


class RouteTable:
    """Routes of one host bucket, by method (``None``: any method)."""

    def __init__(self) -> None:
        self._by_method: dict[str, _Trie] = {}
        self._any = _Trie()

    def add(self, route: Route, methods: Iterable[str] | None) -> None:
        if methods is None:
            self._any.add(route)
            return
        for method in methods:
            trie = self._by_method.get(method)
            if trie is None:
                trie = self._by_method[method] = _Trie()
            trie.add(route)

    def __len__(self) -> int:
        return self._any.size + sum(t.size for t in self._by_method.values())

    def lookup(self, method: str, path: str, segments: list[str],
               out: list[Route] | None = None) -> list[Route]:
        """Every route matching ``method`` and ``path`` (split at ``/`` into ``segments``),
        appended to ``out``; sorted by key when this call created the list."""
        routes: list[Route] = [] if out is None else out
        if self._any.size:
            self._any.lookup(path, segments, routes)
        trie = self._by_method.get(method)
        if trie is not None:
            trie.lookup(path, segments, routes)
        if out is None and len(routes) > 1:
            routes.sort(key=_KEY)
        return routes


def _offset(segments: list[str], depth: int) -> int:
    """Where segment ``depth`` starts in the path the segments were split from."""
    return sum(len(s) for s in segments[:depth]) + depth
