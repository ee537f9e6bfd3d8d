"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import re
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


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1024**3, "gb": 1000**3, "gib": 1024**3}


def size(text: str) -> int:
    """A byte size for argparse: ``65536``, ``64KiB``, ``100MB``, ``1g``."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 65536, 64KiB or 100MB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]
