"""``guard check PATH...``: validate rule files; exit 1 with file:line:column problems.

On success it names every file it loaded, so the built-in packs
(``guard/providers/<name>/pack.yaml``, wherever guard is installed) can be opened.
"""

from __future__ import annotations

import argparse

from guard.cli.common import load_or_report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="validate rule files",
                       description="Validate rule files (and the templates they name). "
                       "Exit 0 when valid; exit 1 printing path:line:column: message lines.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="rule files or directories (default: the built-in packs)")
    p.add_argument("--no-builtin", dest="builtin", action="store_false",
                   help="check PATHs alone, without the built-in packs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ruleset = load_or_report(args.paths, args.builtin)
    if ruleset is None:
        return 1
    print(f"ok: {len(ruleset.rules)} rules in {len(ruleset.files)} file(s)")
    for lp in ruleset.packs:
        print(f"  {lp.path}: pack {lp.pack.pack}, {len(lp.pack.rules)} rules")
    return 0
