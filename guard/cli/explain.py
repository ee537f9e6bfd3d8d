"""``guard explain METHOD URL``: which rule decides a request, and the near misses."""

from __future__ import annotations

import argparse
import json

from guard.cli.common import add_rules_options, load_or_report
from guard.request import Request

NEAR_MISSES = 20  # a host answered from an OpenAPI description has hundreds of rules


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("explain", help="show which rule decides a request",
                       description="Decide a request without sending it: print the deciding "
                       "rule, its action and reason, and the rules for the same host that "
                       "did not match, with why.")
    p.add_argument("method")
    p.add_argument("url")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'")
    p.add_argument("-d", "--data", default="", metavar="BODY",
                   help="request body (form-encoded unless -H Content-Type says otherwise)")
    p.add_argument("--json", action="store_true", help="print JSON")
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
    if args.data and not any(k.lower() == "content-type" for k, _ in headers):
        kind = "application/json" if args.data.lstrip()[:1] in "{[" else \
            "application/x-www-form-urlencoded"
        headers.append(("Content-Type", kind))
    req = Request.build(args.method, args.url, headers=headers, body=args.data)
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
            "near_misses": [{"rule": m.rule_id, "why": m.why} for m in ex.near_misses],
        }, indent=2))
        return 0
    print(f"{req.method} {req.url}")
    print(f"  decided by: {d.rule_id}" + (f"  ({d.rule.source})" if d.rule else ""))
    print(f"  action:     {d.action}")
    if d.reason:
        print(f"  reason:     {d.reason}")
    if operation:
        print(f"  operation:  {operation}")
    if d.captures:
        print("  captures:   " + ", ".join(f"{k}={v}" for k, v in d.captures.items()))
    if ex.near_misses:
        print("  near misses (same host, checked first):")
        for m in ex.near_misses[:NEAR_MISSES]:
            print(f"    {m.rule_id}: {m.why}")
        if len(ex.near_misses) > NEAR_MISSES:
            print(f"    ... and {len(ex.near_misses) - NEAR_MISSES} more (--json lists all)")
    elif ex.candidates == 0:
        print("  no rule names this host")
    return 0
