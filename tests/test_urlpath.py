"""guard/urlpath.py: the one path form rules match, and the paths guard will not forward.

(Through a real proxy and against a counting upstream: tests/test_allow_rules.py.)
"""

from __future__ import annotations

import pytest

from guard.urlpath import ambiguity, normalize, remove_dot_segments


@pytest.mark.parametrize(("raw", "normal"), [
    ("/public/x", "/public/x"),
    ("/public/./admin/x", "/public/admin/x"),
    ("/public/x/../admin/x", "/public/admin/x"),
    ("/public/../secret", "/secret"),
    ("/../../etc/passwd", "/etc/passwd"),
    ("/public/%61dmin/x", "/public/admin/x"),
    ("/public/%41%44MIN", "/public/ADMIN"),
    ("/%7Euser/%5f/%2d", "/~user/_/-"),
    ("/a/%2f/b", "/a/%2F/b"),  # reserved: stays encoded, hex upper-cased
    ("/caf%c3%a9", "/caf%C3%A9"),
    ("/a/.", "/a/"),
    ("/a/..", "/"),
    ("/", "/"),
    ("*", "*"),
])
def test_paths_are_matched_in_one_normal_form(raw, normal):
    assert normalize(raw) == normal


@pytest.mark.parametrize(("raw", "why"), [
    ("/public//admin/x", "an empty segment (//)"),
    ("//public/admin", "an empty segment (//)"),
    ("/public/admin;x/y", "a ; parameter"),
    ("/public;jsessionid=1/admin", "a ; parameter"),
    ("/public/admin%3bx", "an encoded semicolon (%3B)"),
    ("/public/admin%2Fx", "an encoded slash (%2F)"),
    ("/public%2fadmin", "an encoded slash (%2F)"),
    ("/public/admin./x", "a segment ending in a dot or space"),
    ("/public/admin%20/x", "a segment ending in a dot or space"),
    ("/public/admin...", "a segment ending in a dot or space"),
    ("/public\\admin", "a backslash"),
    ("/public/..\\admin", "a backslash"),
    ("/public%5cadmin", "an encoded backslash (%5C)"),
    ("/public/%2e%2e/admin", "an encoded dot (%2E)"),
    ("/public/%2E/admin", "an encoded dot (%2E)"),
    ("/public/.%2e/admin", "an encoded dot (%2E)"),
    ("/public/%252e%252e/admin", "a double encoding (%25)"),
    ("/public/%c0%ae%c0%ae/admin", "percent-encoding that is not UTF-8 (overlong or invalid)"),
    ("/public/%c0%af", "percent-encoding that is not UTF-8 (overlong or invalid)"),
    ("/public/%e0%80%ae", "percent-encoding that is not UTF-8 (overlong or invalid)"),
    ("/public/%ff", "percent-encoding that is not UTF-8 (overlong or invalid)"),
    ("/public/%00admin", "an encoded control character"),
    ("/public/%0d%0aX:1", "an encoded control character"),
    ("/public/%zz", "a % that is not followed by two hex digits"),
    ("/public/%", "a % that is not followed by two hex digits"),
    ("/public/\x00", "a control character or space"),
    ("/public/a b", "a control character or space"),
    ("/public/caf\u00e9", "a raw non-ASCII character"),
    ("public/admin", "a path that does not start with /"),
])
def test_ambiguous_paths_are_named(raw, why):
    assert ambiguity(raw) == why


@pytest.mark.parametrize("raw", [
    "/", "*", "/v1/customers", "/v1/customers/cus_123/", "/public/./x", "/public/../x",
    "/a/%61", "/caf%C3%A9", "/files/report.pdf", "/a/.well-known/x", "/v1/charges:search",
    "/repo.git/info/refs", "/a/~b/-c_d",
])
def test_ordinary_paths_are_not_ambiguous(raw):
    assert ambiguity(raw) is None


def test_dot_segment_removal_follows_rfc_3986_examples():
    # RFC 3986 section 5.4.1, on the path of the base URI http://a/b/c/d;p?q
    assert remove_dot_segments("/b/c/./g") == "/b/c/g"
    assert remove_dot_segments("/b/c/../g") == "/b/g"
    assert remove_dot_segments("/b/c/../../g") == "/g"
    assert remove_dot_segments("/b/c/../../../g") == "/g"
    assert remove_dot_segments("/b/c/g/./h/../i") == "/b/c/g/i"
    assert remove_dot_segments("/b/c/.") == "/b/c/"
    assert remove_dot_segments("/b/c/./") == "/b/c/"
    assert remove_dot_segments("/b/c/..") == "/b/"
    assert remove_dot_segments("/b/c/g..") == "/b/c/g.."
