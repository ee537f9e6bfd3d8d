"""``guard check PATH...``: validate rule files; exit 1 with file:line:column problems.

On success it names every file it loaded, so the built-in packs
(``guard/providers/<name>/pack.yaml``, wherever guard is installed) can be opened.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard.cli.common import load_or_report
from guard.rules.loader import LoadedPack, rule_files


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
    if not args.paths and not args.builtin:
        print("guard check: nothing to check: name rule files or directories (PATH...), or "
              "leave out --no-builtin to check the built-in packs", file=sys.stderr)
        return 2
    empty = [p for p in args.paths if Path(p).is_dir() and not rule_files([p])]
    if empty:
        print("guard check: no rule files in " + ", ".join(empty) + " (a directory's rule "
              "files are its *.yaml and *.yml files, not cases, OpenAPI descriptions or "
              "templates)", file=sys.stderr)
        return 1
    packs = load_or_report(args.paths, args.builtin)
    if packs is None:
        return 1
    ruleset = packs.ruleset
    print(f"ok: {len(ruleset.rules)} rules in {len(ruleset.files)} file(s)")
    for lp in ruleset.packs:
        line = f"  {lp.path}: pack {lp.pack.pack}, {len(lp.pack.rules)} rules"
        print(line + (f"; {openapi_summary(lp)}" if lp.openapi is not None else ""))
    return 0


def openapi_summary(lp: LoadedPack) -> str:
    """``OpenAPI spec3.json.gz (Stripe API 2024-04-10): 533 operations, ...``"""
    api = lp.openapi
    info = api.spec.document.get("info") or {}
    counts = api.summary()
    generated = sum(1 for rid in lp.operations if rid.startswith(
        (lp.pack.openapi.rule_prefix if lp.pack.openapi and lp.pack.openapi.rule_prefix
         else f"{lp.pack.pack}.openapi") + "."))
    own = len(lp.operations) - generated
    added: dict[str, int] = {}
    for op in api.operations:
        source = op.raw.get("x-guardFrom")
        if isinstance(source, str):
            added[source] = added.get(source, 0) + 1
    extra = "".join(f" + {n} from {name}" for name, n in sorted(added.items()))
    return (f"OpenAPI {api.spec.path.name} ({api.spec.title} "
            f"{info.get('version', '')}){extra}: {counts['operations']} operations, {own} answered "
            f"by the pack's own rules, {generated} generated; {counts['stateful']} stateful, "
            f"{counts['example_only']} example-only")
