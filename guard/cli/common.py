"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import sys

from guard import options
from guard.errors import RuleError
from guard.packs import Packs, load_packs


def add_rules_options(p: argparse.ArgumentParser) -> None:
    """``--rules`` and ``--builtin/--no-builtin``, as :class:`~guard.options.Options` declares
    them (for the commands that load rules but take no other run option)."""
    options.add_flags(p, only=("rules", "builtin"), config=False, sources=False)
    fields = options.Options.model_fields
    p.set_defaults(**{k: fields[k].get_default(call_default_factory=True)
                      for k in ("rules", "builtin")})


def load_or_report(paths: list[str], builtin: bool) -> Packs | None:
    """Load rules and their responses; on failure print every problem to stderr and
    return None."""
    try:
        return load_packs(paths, builtin=builtin)
    except RuleError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(f"guard: {len(e.problems)} problem(s) in rule files", file=sys.stderr)
        return None
