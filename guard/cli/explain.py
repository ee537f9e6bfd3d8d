"""``guard explain METHOD URL``: which rule decides a request, and the near misses.

The request is built as curl builds it from the same flags, so that explain decides what
the same ``curl`` command would be decided: ``-d`` sends its text (``@FILE`` reads a file
without its newlines, ``@-`` standard input) as ``application/x-www-form-urlencoded``
unless ``-H 'Content-Type: ...'`` says otherwise, several ``-d`` join with ``&``;
``--data-raw`` takes ``@`` literally; ``--data-binary @FILE`` keeps the file's bytes;
``--data-urlencode`` encodes its value; ``--json-body`` is curl's ``--json`` (JSON
content type and ``Accept``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote_plus

from guard.cli.common import add_rules_options, load_or_report
from guard.request import Request
from guard.textsafe import printable

NEAR_MISSES = 20  # a host answered from an OpenAPI description has hundreds of rules


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("explain", help="show which rule decides a request",
                       description="Decide a request without sending it: print the deciding "
                       "rule, its action and reason, and the rules for the same host that "
                       "did not match, with why.")
    p.add_argument("method", metavar="METHOD", help="the HTTP method: GET, POST, ...")
    p.add_argument("url", metavar="URL", help="the full URL, https://api.stripe.com/v1/...")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'",
                   help="a request header, as curl -H (repeatable)")
    body = p.add_argument_group("body, as curl builds it from the same flags")
    body.add_argument("-d", "--data", action="append", default=[], metavar="DATA",
                      type=_data("data"),
                      help="as curl -d: sent as application/x-www-form-urlencoded unless "
                      "-H Content-Type says otherwise; @FILE reads a file without its "
                      "newlines, @- standard input; several join with &")
    body.add_argument("--data-raw", action="append", default=[], metavar="DATA",
                      dest="data", type=_data("raw"), help="as -d, with @ taken literally")
    body.add_argument("--data-binary", action="append", default=[], metavar="DATA",
                      dest="data", type=_data("binary"),
                      help="as -d, but @FILE keeps the file's bytes (newlines too)")
    body.add_argument("--data-urlencode", action="append", default=[], metavar="[NAME]=TEXT",
                      dest="data", type=_data("urlencode"),
                      help="as curl: NAME=TEXT sends NAME= and TEXT percent-encoded; "
                      "NAME@FILE encodes a file")
    body.add_argument("--json-body", action="append", default=[], metavar="JSON",
                      dest="json_body", type=_data("binary"),
                      help="curl's --json: the body as given (@FILE too) with Content-Type "
                      "and Accept application/json")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_rules_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    packs = load_or_report(args.rules, args.builtin)
    if packs is None:
        return 1
    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            raise SystemExit(f"guard explain: bad header {h!r}, expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    data, content_type, source = curl_body(args.data, args.json_body, headers)
    if content_type and source != "-H":
        headers.append(("Content-Type", content_type))
        if args.json_body and not any(k.lower() == "accept" for k, _ in headers):
            headers.append(("Accept", "application/json"))
    req = Request.build(args.method, args.url, headers=headers, body=data)
    ex = packs.engine.explain(req)
    d = ex.decision
    op = next((lp.operations[d.rule_id] for lp in packs.ruleset.packs
               if d.rule_id in lp.operations), None)
    operation = f"{op.operation_id} ({op.method} {op.path}, {op.role})" if op else None
    if args.json:
        print(json.dumps({
            "rule": d.rule_id, "action": d.action, "reason": d.reason,
            "operation": operation, "captures": dict(d.captures),
            "source": str(d.rule.source) if d.rule else None,
            "body": {"size": len(data), "content_type": content_type,
                     "content_type_from": source} if data else None,
            "near_misses": [{"rule": m.rule_id, "why": m.why, "any_host": m.any_host}
                            for m in ex.near_misses],
        }, indent=2))
        return 0
    print(f"{printable(req.method)} {printable(req.url)}")
    if data:
        print(f"  body:       {len(data)} bytes, Content-Type {printable(content_type)} "
              f"({source})")
    print(f"  decided by: {d.rule_id}" + (f"  ({d.rule.source})" if d.rule else ""))
    print(f"  action:     {d.action}")
    if d.reason:
        print(f"  reason:     {printable(d.reason)}")
    if operation:
        print(f"  operation:  {operation}")
    if d.captures:
        print("  captures:   " + ", ".join(f"{k}={printable(v)}" for k, v in d.captures.items()))
    own = [m for m in ex.near_misses if not m.any_host]
    every = [m for m in ex.near_misses if m.any_host]
    if own:
        print("  near misses (same host, checked first):")
        for m in own[:NEAR_MISSES]:
            print(f"    {m.rule_id}: {printable(m.why)}")
        if len(own) > NEAR_MISSES:
            print(f"    ... and {len(own) - NEAR_MISSES} more (--json lists all)")
    elif ex.candidates == len(every):
        print("  no rule names this host")
    if every:
        print("  checked first, for every host, did not match: "
              + ", ".join(m.rule_id for m in every) + " (--json says why)")
    return 0


Data = tuple[str, str]  # (how curl reads it, what was given)


def _data(how: str) -> Callable[[str], Data]:
    def parse(text: str) -> Data:
        return how, text
    parse.__name__ = f"--data-{how}"
    return parse


def curl_body(data: list[Data], json_body: list[Data],
              headers: list[tuple[str, str]]) -> tuple[bytes, str | None, str]:
    """(body, content type, where the type came from) as curl sends them for the same
    flags. Without a body: no content type.

    >>> curl_body([("data", "a=1"), ("urlencode", "q=x y")], [], [])
    (b'a=1&q=x+y', 'application/x-www-form-urlencoded', "curl's default for -d")
    >>> curl_body([("data", '{"a": 1}')], [], [])[1]
    'application/x-www-form-urlencoded'
    >>> curl_body([], [("binary", '{"a": 1}')], [("Content-Type", "text/plain")])[1:]
    ('text/plain', '-H')
    """
    parts = [_part(how, text) for how, text in data + json_body]
    if not parts:
        return b"", None, ""
    body = b"&".join(parts) if not json_body else b"".join(parts)
    given = next((v for k, v in headers if k.lower() == "content-type"), None)
    if given is not None:
        return body, given, "-H"
    if json_body:
        return body, "application/json", "curl's --json"
    return body, "application/x-www-form-urlencoded", "curl's default for -d"


def _part(how: str, text: str) -> bytes:
    if how == "urlencode":
        name, sep, value = text.partition("=")
        fname, at, path = text.partition("@")
        if not sep and at and "=" not in fname:
            text_of_file = _read(path).decode("utf-8", "surrogateescape")
            return (f"{fname}=" if fname else "").encode() + quote_plus(text_of_file).encode()
        if not sep:
            return quote_plus(text).encode()
        return (f"{name}=" if name else "").encode() + quote_plus(value).encode()
    if how != "raw" and text.startswith("@"):
        content = _read(text[1:])
        return content if how == "binary" else content.replace(b"\r", b"").replace(b"\n", b"")
    return text.encode("utf-8", "surrogateescape")


def _read(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise SystemExit(f"guard explain: cannot read {path}: {e.strerror}") from None
