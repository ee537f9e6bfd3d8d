"""The route index: which templates a path reaches, with which captures."""

from __future__ import annotations

import pytest

from guard.engine.routes import Route, RouteTable
from guard.rules.pathtemplate import PathTemplate, Segment

TEMPLATES = [
    "/v1/items", "/v1/items/{id}", "/v1/items/special", "/v1/items/{id}/lines/{line}",
    "/n/{n:int}", "/files/{rest:path}", "/tree/**", "/f/{name}.json", "/f/v{major:int}-{tag}",
    "/a{rest:path}/end", "/", "/**", "/deep/{a}/{b}/**",
]


def table(methods: frozenset[str] | None = None) -> RouteTable:
    t = RouteTable()
    for i, template in enumerate(TEMPLATES):
        t.add(Route(i, template, PathTemplate(template)), methods)
    return t


def reached(t: RouteTable, path: str, method: str = "GET") -> dict[str, dict[str, str]]:
    segments = path.split("/")
    return {r.rule: r.captures(path, segments) for r in t.lookup(method, path, segments)}


@pytest.mark.parametrize(("path", "expected"), [
    ("/v1/items", {"/v1/items": {}}),
    ("/v1/items/it_1", {"/v1/items/{id}": {"id": "it_1"}}),
    ("/v1/items/special", {"/v1/items/special": {}, "/v1/items/{id}": {"id": "special"}}),
    ("/v1/items/it_1/lines/3", {"/v1/items/{id}/lines/{line}": {"id": "it_1", "line": "3"}}),
    ("/v1/items/", {}),  # a capture needs at least one character
    ("/n/42", {"/n/{n:int}": {"n": "42"}}),
    ("/n/4x", {}),
    ("/n/٣", {}),  # {n:int} means ASCII digits, like the regex [0-9]+
    ("/files/a/b.txt", {"/files/{rest:path}": {"rest": "a/b.txt"}}),
    ("/files/", {"/files/{rest:path}": {"rest": ""}}),
    ("/files", {}),
    ("/tree", {"/tree/**": {}}),
    ("/tree/x/y", {"/tree/**": {}}),
    ("/treex", {}),
    ("/f/report.json", {"/f/{name}.json": {"name": "report"}}),
    ("/f/.json", {}),
    ("/f/v2-beta", {"/f/v{major:int}-{tag}": {"major": "2", "tag": "beta"}}),
    ("/abc/x/end", {"/a{rest:path}/end": {"rest": "bc/x"}}),
    ("/a/end", {"/a{rest:path}/end": {"rest": ""}}),
    ("/", {"/": {}}),
    ("/deep/1/2", {"/deep/{a}/{b}/**": {"a": "1", "b": "2"}}),
    ("/deep/1/2/3/4", {"/deep/{a}/{b}/**": {"a": "1", "b": "2"}}),
    ("/v1/items\n", {}),  # a trailing newline is not the end of the path
    ("/tree/x\ny", {"/tree/**": {}}),  # any rest is any rest
])
def test_a_path_reaches_exactly_the_templates_that_match_it(path, expected):
    got = reached(table(), path)
    got.pop("/**")  # matches every path that starts with /
    assert got == expected
    for template, captures in expected.items():  # and agrees with the whole-path regex
        assert PathTemplate(template).match(path) == captures


def test_paths_without_a_leading_slash_reach_nothing():
    for path in ("*", "v1/items", "example.com:443"):
        assert reached(table(), path) == {}
    assert reached(table(), "") == {"/**": {}}  # as the regex (?:/.*)? says


def test_methods_are_indexed_and_none_means_any():
    t = RouteTable()
    t.add(Route(1, "get", PathTemplate("/x")), frozenset({"GET", "HEAD"}))
    t.add(Route(2, "any", PathTemplate("/x")), None)
    t.add(Route(0, "pathless-post", None), frozenset({"POST"}))
    assert [r.rule for r in t.lookup("HEAD", "/x", ["", "x"])] == ["get", "any"]
    assert [r.rule for r in t.lookup("POST", "/x", ["", "x"])] == ["pathless-post", "any"]
    assert [r.rule for r in t.lookup("get", "/x", ["", "x"])] == ["any"]  # methods are exact


def test_a_lookup_returns_routes_best_key_first():
    t = RouteTable()
    for key, template in [(5, "/a/{x}"), (1, "/a/**"), (3, "/a/b"), (2, None)]:
        t.add(Route(key, template, PathTemplate(template) if template else None), None)
    assert [r.key for r in t.lookup("GET", "/a/b", ["", "a", "b"])] == [1, 2, 3, 5]


def test_one_lookup_among_thousands_of_routes_tests_one_segment_pattern(monkeypatch):
    t = RouteTable()
    for n in range(5000):
        t.add(Route(n, n, PathTemplate(f"/v1/r{n}/{{id}}")), frozenset({"GET"}))
    tested: list[str] = []
    real = Segment.accepts

    def counting(self: Segment, segment: str) -> bool:
        tested.append(self.text)
        return real(self, segment)

    monkeypatch.setattr(Segment, "accepts", counting)
    found = t.lookup("GET", "/v1/r4321/x", ["", "v1", "r4321", "x"])
    assert [r.rule for r in found] == [4321]
    assert tested == ["{id}"]  # literals were dict lookups; one capture was tested
