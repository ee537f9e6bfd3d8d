"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import sys

from guard.errors import RuleError
from guard.rules import RuleSet, load_rules


def add_rules_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", "-r", action="append", default=[], metavar="PATH",
                   help="a rule file or directory (repeatable); added to the built-in packs")
    p.add_argument("--no-builtin", dest="builtin", action="store_false",
                   help="do not load the built-in rule packs")


def load_or_report(paths: list[str], builtin: bool) -> RuleSet | None:
    """Load rules; on failure print every problem to stderr and return None."""
    try:
        return load_rules(paths, builtin=builtin)
    except RuleError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(f"guard: {len(e.problems)} problem(s) in rule files", file=sys.stderr)
        return None
