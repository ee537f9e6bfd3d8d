"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard import options
from guard.errors import OptionsError, RuleError
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


def run_options() -> options.Options:
    """The options a ``guard run`` started here would have without flags (its environment
    and config file count): where its audit log and state are by default. Exits 2 with the
    problems when they are bad."""
    try:
        return options.load()
    except OptionsError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(2) from None


def state_dir(given: Path | None) -> Path:
    """``--state`` as given, else the directory ``guard run`` journals worlds to by default
    here; exits 2 saying why when there is none."""
    if given is not None:
        return given
    state = run_options().state
    if state is None:
        print("guard: guard run keeps no state journal here (--state off, or worlds in "
              "Redis): say which with --state DIR", file=sys.stderr)
        raise SystemExit(2)
    return state


def audit_files(given: list[Path]) -> list[Path]:
    """The audit log(s) named on the command line, else ``guard run``'s default one (its
    directory, so every ``--workers`` file is read too); exits 2 when there is none."""
    if given:
        return given
    audit = run_options().audit
    if audit is None:
        print("guard: guard run writes no audit log here (--audit off): name the log FILE",
              file=sys.stderr)
        raise SystemExit(2)
    return [audit.parent] if audit.name == "audit.jsonl" and audit.parent.is_dir() else [audit]
