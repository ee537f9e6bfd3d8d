"""An agent's HTML mail, cleaned for the console's frame: a table of hostile mails."""

from __future__ import annotations

import re

import pytest

from guard.console.mailview import MAIL_CSP, clean, page

HOSTILE = [
    "<script>parent.__pwned = 1</script>",
    "<SCRIPT SRC=https://evil.test/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)>",
    "<a href=javascript:alert(1)>x</a>",
    "<a href='https://evil.test/track'>x</a>",
    "<meta http-equiv=refresh content='0;url=https://evil.test/'>",
    "<base href='https://evil.test/'>",
    "<iframe src='https://evil.test/'></iframe>",
    "<object data='https://evil.test/x.swf'></object>",
    "<embed src='https://evil.test/x'>",
    "<form action='https://evil.test/'><input name=a><button>go</button></form>",
    "<link rel=stylesheet href='https://evil.test/x.css'>",
    "<style>@import url(https://evil.test/x.css); body{background:url(https://evil.test/b)}"
    "</style><p>after</p>",
    "<style></style><script>alert(1)</script>",
    "<style>x</style ><img src=https://evil.test/open.gif>",
    "<textarea></textarea><script>alert(1)</script></textarea>",
    "<title></title><script>alert(1)</script>",
    "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript>",
    "<template><script>alert(1)</script></template>",
    "<p style='background:url(https://evil.test/p)'>styled</p>",
    "<img src='data:image/svg+xml;base64,PHN2Zz48L3N2Zz4='>",
    "<img srcset='https://evil.test/1x.gif 1x'>",
    "<table background='https://evil.test/t.gif'><tr><td>x</td></tr></table>",
    "<div id=x onmouseover='alert(1)' data-x=1 formaction=https://evil.test/>hi</div>",
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<scr<script>ipt>alert(1)</script>",
    "<p>a<p>b</div></td></table>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]


@pytest.mark.parametrize("mail", HOSTILE)
def test_a_hostile_mail_keeps_no_script_no_handler_and_no_remote_address(mail: str) -> None:
    out = clean(mail)
    lowered = out.lower()
    for tag in ("script", "iframe", "object", "embed", "meta", "base", "form", "input",
                "link", "svg", "textarea", "template", "noscript", "button"):
        assert f"<{tag}" not in lowered, out
    assert not re.search(r"<[^>]*\son\w+\s*=", lowered), out  # no event handler attributes
    for attr in ("href=", "src=\"http", "srcset=", "background=", "formaction=", "action="):
        assert attr not in lowered, out
    # a remote address may only survive as text (a title, an alt or the visible text)
    for m in re.finditer(r"https://evil\.test", out):
        before = out[:m.start()]
        assert before.rfind("<") < before.rfind(">") or re.search(
            r'(title|alt)="[^"]*$', before) or "url(" in out[max(0, m.start() - 8):m.start()]


def test_what_a_mail_means_to_say_survives() -> None:
    out = clean('<html><head><style>h1{color:red}</style></head><body dir="rtl">'
                '<h1 align=center>Hello</h1><table border=1><tr><td colspan=2>'
                '<b>bold</b> &amp; <i>it</i></td></tr></table>'
                '<img src="data:image/png;base64,iVBORw0KGgo=" width=2></body></html>')
    assert out == ('<html><head><style>h1{color:red}</style></head><body dir="rtl">'
                   '<h1 align="center">Hello</h1><table border="1"><tr><td colspan="2">'
                   '<b>bold</b> &amp; <i>it</i></td></tr></table>'
                   '<img src="data:image/png;base64,iVBORw0KGgo=" width="2"></body></html>')


def test_a_link_shows_where_it_goes_but_cannot_be_followed() -> None:
    assert clean('<a href="https://x.test/?a=1&b=&quot;2">go</a>') == \
        '<a title="link (not followed here): https://x.test/?a=1&amp;b=&quot;2">go</a>'


def test_the_frame_document_and_its_policy() -> None:
    doc = page("<p>hi</p>")
    assert doc.startswith("<!doctype html><meta charset=\"utf-8\">") and doc.endswith("<p>hi</p>")
    for directive in ("sandbox", "default-src 'none'", "img-src data:", "form-action 'none'",
                      "frame-ancestors 'self'"):
        assert directive in MAIL_CSP
    assert "script-src" not in MAIL_CSP  # default-src 'none' covers scripts


def test_a_huge_or_deeply_nested_mail_is_cut_not_a_crash() -> None:
    assert len(clean("<div>" * 200_000 + "x")) <= 2 * 1024 * 1024 + 16
    assert clean("<b>" + "x" * 10) == "<b>" + "x" * 10
