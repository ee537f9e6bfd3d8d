"""``guard test [PATH...]``: run rule test cases; ``--coverage`` lists rules no case ran."""

from __future__ import annotations

import argparse
import sys

from guard.authoring import collect, run_suite
from guard.authoring.coverage import unexercised
from guard.authoring.report import count_rules, print_results, print_unexercised
from guard.authoring.runner import TEST_SEED
from guard.errors import RuleError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "test", help="run rule test cases",
        description="Run the test cases of rule packs (their 'tests:' lists and *.cases.yaml "
        "files) through guard's engine and simulator, without a proxy or network. Each "
        "pack's cases, and each case file, run in order against one fresh world. Exit 1 if "
        "any case fails or a rule or case file has a problem.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="rule files, case files (*.cases.yaml) or directories "
                   "(default: the built-in packs)")
    p.add_argument("--no-builtin", dest="builtin", action="store_false",
                   help="load PATHs alone, without the built-in packs")
    p.add_argument("--coverage", action="store_true",
                   help="also list the rules of the tested packs that no case exercised")
    p.add_argument("--seed", type=int, default=TEST_SEED,
                   help=f"seed for ids, Faker data and the clock (default {TEST_SEED})")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only failures and the summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        suite = collect(args.paths, builtin=args.builtin)
    except RuleError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(f"guard: {len(e.problems)} problem(s) in rule or case files", file=sys.stderr)
        return 1
    if suite.count == 0:
        print("guard: no test cases found (add 'tests:' to a pack or a *.cases.yaml file)",
              file=sys.stderr)
        return 1
    results = run_suite(suite, seed=args.seed)
    print_results(results, sys.stdout, verbose=not args.quiet)
    if args.coverage:
        missing = unexercised(suite.ruleset, suite.packs, results)
        print_unexercised(missing, count_rules(suite.ruleset.rules, suite.packs), sys.stdout)
    return 0 if all(r.passed for r in results) else 1
