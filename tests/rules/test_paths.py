"""Paths into response bodies, as rule test cases write them (``expect: {body: {path: ...}}``)."""

from __future__ import annotations

import pytest

from guard.rules.paths import lookup, parse_path

BODY = {"data": [{"id": "a", "metadata": {"plan": "pro"}}, {"id": "b"}],
        "x-key": {"a.b": 1}, "0": "zero-key", "has_more": False, "empty": None}


@pytest.mark.parametrize(("path", "found"), [
    ("$", (True, BODY)),
    ("data.0.id", (True, "a")),
    ("data[1][id]", (True, "b")),                  # form-style brackets in a dotted path
    ("data.0.metadata[plan]", (True, "pro")),
    ("$.data[0].metadata.plan", (True, "pro")),
    ("$.data[-1].id", (True, "b")),
    ("$['x-key']['a.b']", (True, 1)),              # quoted keys may hold dots
    ('$["x-key"]', (True, {"a.b": 1})),
    ("0", (True, "zero-key")),                     # a digit names a key of a dict
    ("has_more", (True, False)),                   # present and falsy is still present
    ("empty", (True, None)),                       # present and null is still present
    ("missing", (False, None)),
    ("data.2.id", (False, None)),                  # past the end
    ("$.data[-3]", (False, None)),
    ("data.x", (False, None)),                     # a name does not index a list
    ("data.0.id.more", (False, None)),             # through a string
    ("data.²", (False, None)),                     # a non-ASCII digit is not an index
])
def test_a_path_finds_what_it_names_and_only_that(path, found):
    assert lookup(BODY, parse_path(path)) == found


@pytest.mark.parametrize(("path", "message"), [
    ("", "empty path: use '\\$' for the whole body"),
    ("data..id", "empty segment"),
    ("$data", "use \\$.name, \\$\\[0\\] or \\$\\['name'\\]"),
    ("$.data[0", "at '\\[0'"),
    ("$.data['id]", "bad path"),
])
def test_a_bad_path_says_what_is_wrong(path, message):
    with pytest.raises(ValueError, match=message):
        parse_path(path)
