"""``guard coverage FILE --rules PATH...``: which rules never fired in a recorded audit log,
and which requests fell to the default rule, grouped by host (what to write next).

The audit command group can mount the same subcommand as ``guard audit coverage`` by
calling :func:`add_arguments` and :func:`run` on its own parser.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from guard.authoring.coverage import read_audit_coverage
from guard.authoring.report import count_rules, print_audit_coverage
from guard.cli.common import add_rules_options, load_or_report

DESCRIPTION = ("Read an audit log (JSON lines written by 'guard run --audit') and list the "
               "rules that never fired, per pack, and the requests no rule matched "
               "(guard.default-deny), grouped by host with counts and example paths.")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("coverage", help="rules that never fired in an audit log",
                       description=DESCRIPTION)
    add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="FILE", help="an audit log (JSON lines)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_rules_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    packs = load_or_report(args.rules, args.builtin)
    if packs is None:
        return 1
    try:
        cov = read_audit_coverage(args.file, packs.ruleset)
    except OSError as e:
        print(f"guard: cannot read audit log {args.file}: {e.strerror or e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(cov.as_json(), indent=2))
    else:
        names = {lp.pack.pack for lp in packs.ruleset.packs}
        print_audit_coverage(cov, count_rules(packs.ruleset.rules, names), sys.stdout)
    return 0
