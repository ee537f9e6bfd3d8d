"""``guard replay FILE``: decide recorded requests again under other rules, or re-send them.

With ``--rules`` (or ``--no-builtin``) nothing is sent: every recorded request is
decided by the pure engine and the differences are printed. Exit 1 when a
request that was kept inside the sandbox (blocked, simulated, failed) would now
be allowed out: a CI gate for rule changes. Exit 0 otherwise, 2 on bad input.

With ``--send PROXY_URL`` the recorded requests are sent through a running guard.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from guard.audit.reader import chains, merged_from
from guard.cli.common import add_rules_options, load_or_report
from guard.errors import SandboxError
from guard.forensics.replay import LOG_KEY, replay
from guard.options import Options
from guard.sandbox import tokens
from guard.textsafe import printable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="re-decide logged requests under other rules, or "
                       "re-send them", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="the audit log, several writers' logs (merged by time) or a directory")
    add_rules_options(p)
    p.add_argument("--all", action="store_true", help="print unchanged decisions too")
    p.add_argument("--json", action="store_true", help="one JSON outcome per line")
    s = p.add_argument_group("re-sending")
    s.add_argument("--send", metavar="PROXY_URL",
                   help="send the requests through the guard at PROXY_URL instead")
    ca = Options().ca
    s.add_argument("--cacert", type=Path, default=ca, help=f"guard's CA for https (default {ca})")
    s.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'",
                   help="replace a header in every request, e.g. a usable test key "
                   "(logged credentials are redacted)")
    s.add_argument("--sandbox", metavar="NAME",
                   help="send X-Guard-Sandbox: NAME ('recorded': each request's own sandbox)")
    s.add_argument("--sandbox-key", type=Path, metavar="FILE",
                   help="the --sandbox-key of the guard sent to: X-Guard-Sandbox then "
                   "carries each name's derived token, which that guard accepts as proof")
    s.add_argument("--include-allowed", action="store_true",
                   help="also re-send requests that were allowed (they reach the real world)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        groups = chains(args.files)
        found = []  # several writers' logs: merged by time, each event marked with its log
        for name, e in merged_from(groups):
            if len(groups) > 1:
                e[LOG_KEY] = name  # each writer numbers its own: a seq names its log too
            found.append(e)
    except OSError as e:
        print(f"guard replay: cannot read {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    if args.send:
        return _send(args, found)
    packs = load_or_report(args.rules, args.builtin)
    if packs is None:
        return 2
    outcomes = replay(found, packs.engine)
    loosened = [o for o in outcomes if o.loosened]
    changed = [o for o in outcomes if o.changed]
    for o in outcomes if args.all else changed:
        if args.json:
            print(json.dumps({"seq": o.seq, **({"log": o.log} if o.log else {}),
                              "method": o.method, "url": o.url,
                              "was": {"action": o.was_action, "rule": o.was_rule},
                              "now": {"action": o.now.action, "rule": o.now.rule_id},
                              "changed": o.changed, "loosened": o.loosened,
                              "partial": o.partial}))
            continue
        mark = "LOOSENED" if o.loosened else "tightened" if o.tightened else \
            "changed" if o.changed else "same"
        print(f"{_seq(o.log, o.seq)}  {mark:<9}  {printable(o.was_action)} "
              f"({printable(o.was_rule)}) -> {o.now.action} ({o.now.rule_id})  "
              f"{printable(o.method)} {printable(o.url)}"
              + ("  [body truncated in log]" if o.partial else ""))
    print(f"replayed {len(outcomes)} request(s): {len(changed)} decision(s) would change, "
          f"{len(loosened)} would newly reach the real world", file=sys.stderr)
    if loosened:
        print("guard replay: FAIL: requests that were kept in the sandbox would now be "
              f"allowed out: seq {', '.join(_seq(o.log, o.seq).strip() for o in loosened[:50])}",
              file=sys.stderr)
        return 1
    return 0


def _send(args: argparse.Namespace, found: list[dict[str, Any]]) -> int:
    from guard.forensics.send import send

    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            print(f"guard replay: bad header {h!r}, expected 'Name: value'", file=sys.stderr)
            return 2
        headers.append((name, value))
    cafile = args.cacert.expanduser()
    try:
        results = send(found, args.send, cafile=cafile if cafile.exists() else None,
                       sandbox=args.sandbox, headers=headers,
                       sandbox_key=tokens.load_key(args.sandbox_key)
                       if args.sandbox_key else None,
                       include_allowed=args.include_allowed)
    except (ValueError, SandboxError) as e:
        print(f"guard replay: {e}", file=sys.stderr)
        return 2
    errors = 0
    for r in results:
        errors += bool(r.error)
        if args.json:
            print(json.dumps({k: v for k, v in r.__dict__.items() if k != "log" or v}))
            continue
        if r.skipped:
            now = f"skipped: {printable(r.skipped)}"
        elif r.error:
            now = f"ERROR {printable(r.error)}"
        else:
            now = f"{r.status} {printable(r.action)} ({printable(r.rule)})"
        print(f"{_seq(r.log, r.seq)}  {printable(r.was_status)} {printable(r.was_action)} "
              f"-> {now}  {printable(r.method)} {printable(r.url)}")
    return 1 if errors else 0


def _seq(log: str, seq: int) -> str:
    """An event's seq as printed: with several writers' logs, its log's name before it."""
    return f"{printable(log)} #{seq}" if log else f"{seq:>6}"
