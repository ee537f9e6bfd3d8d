"""An HTML mail from the outbox, made safe to show in the console.

The agent wrote the mail, so it is hostile: scripts, event handlers, ``javascript:``
links, ``<meta http-equiv=refresh>`` (which navigates even a sandboxed frame), forms,
frames, and remote images or styles that would tell the real world the mail was opened.
Three layers, any one of which stops a script:

1. :func:`clean`: the mail is re-written from its tokens, keeping only formatting tags and
   attributes (a list of what is allowed, not of what is not); text and attribute values
   are escaped again; ``<script>``, ``<style>``-less tricks, frames, objects, ``<meta>``,
   ``<base>`` and forms are dropped; links lose their target (it is shown on hover), images
   keep only inline ``data:`` pictures. What comes out holds no markup it did not build.
2. The answer's Content-Security-Policy (:data:`MAIL_CSP`): ``sandbox`` (a unique origin,
   no scripts, no forms, no popups), nothing loaded from anywhere but ``data:``.
3. The console shows it in ``<iframe sandbox>`` (no ``allow-scripts``, no
   ``allow-same-origin``).

>>> clean('<p onclick="x()">Hi <script>alert(1)</script><a href="javascript:x">go</a></p>')
'<p>Hi <a title="link (not followed here): javascript:x">go</a></p>'
>>> clean('<img src="https://t.example/open.gif" width=1>')
'<img alt="[remote image not loaded: https://t.example/open.gif]" width="1">'
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

MAIL_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            "font-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")

ALLOWED_TAGS = frozenset((
    "a", "abbr", "address", "article", "b", "big", "blockquote", "body", "br", "caption",
    "center", "cite", "code", "col", "colgroup", "dd", "del", "div", "dl", "dt", "em",
    "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "head",
    "header", "hr", "html", "i", "img", "ins", "kbd", "li", "main", "mark", "nav", "ol",
    "p", "pre", "q", "s", "samp", "section", "small", "span", "strike", "strong", "style",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
    "var", "wbr",
))
VOID_TAGS = frozenset(("br", "col", "hr", "img", "wbr"))
DROPPED_WITH_CONTENT = frozenset((
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript",
    "noembed", "noframes", "template", "svg", "math", "title", "textarea", "select",
    "xmp", "plaintext",
))
ALLOWED_ATTRS = frozenset((
    "align", "valign", "width", "height", "bgcolor", "color", "border", "cellpadding",
    "cellspacing", "colspan", "rowspan", "alt", "title", "dir", "lang", "face", "size",
    "style", "class", "span", "start", "nowrap", "hspace", "vspace", "summary", "abbr",
    "scope",
))
_DATA_IMAGE = re.compile(r"data:image/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]*\Z")
MAX_OUTPUT = 2 * 1024 * 1024  # a mail bigger than this is cut (the outbox keeps it all)


class _Cleaner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.size = 0
        self.dropping: list[str] = []  # open dropped elements, innermost last
        self.in_style = False

    def _emit(self, text: str) -> None:
        if self.size < MAX_OUTPUT:
            self.out.append(text)
            self.size += len(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.dropping:
            if tag == self.dropping[-1] and tag not in VOID_TAGS:
                self.dropping.append(tag)
            return
        if tag in DROPPED_WITH_CONTENT:
            self.dropping.append(tag)
            return
        if tag not in ALLOWED_TAGS:
            return
        kept = _attributes(tag, attrs)
        self._emit(f"<{tag}{kept}>")
        if tag == "style":
            self.in_style = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_TAGS or tag not in ALLOWED_TAGS:
            self.handle_starttag(tag, attrs)
            return
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.dropping:
            if tag == self.dropping[-1]:
                self.dropping.pop()
            return
        if tag in ALLOWED_TAGS and tag not in VOID_TAGS:
            self._emit(f"</{tag}>")
            if tag == "style":
                self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.dropping:
            return
        if self.in_style:
            # CSS text: it may not close the element nor open markup
            self._emit(data.replace("<", "").replace(">", ""))
            return
        self._emit(escape(data, quote=False))


def _attributes(tag: str, attrs: list[tuple[str, str | None]]) -> str:
    out: list[str] = []
    for name, value in attrs:
        name = name.lower()
        text = value or ""
        if tag == "a" and name == "href":
            out.append(f' title="{escape("link (not followed here): " + text[:500])}"')
        elif tag == "img" and name == "src":
            if _DATA_IMAGE.match(text):
                out.append(f' src="{escape(text)}"')
            else:
                out.append(f' alt="{escape("[remote image not loaded: " + text[:300] + "]")}"')
        elif name in ALLOWED_ATTRS and not (tag == "img" and name == "alt"
                                            and any(n == "src" for n, _ in attrs)):
            out.append(f' {name}="{escape(text)}"')
    return "".join(out)


def clean(html: str) -> str:
    """``html`` with only formatting left (see the module docstring)."""
    parser = _Cleaner()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)


def page(html: str) -> str:
    """The document the console's mail frame loads."""
    return ('<!doctype html><meta charset="utf-8"><meta name="referrer" '
            f'content="no-referrer">{clean(html)}')
