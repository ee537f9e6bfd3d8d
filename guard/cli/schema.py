"""``guard schema``: print the JSON Schema of rule files (or case files) for editors."""

from __future__ import annotations

import argparse
from pathlib import Path

from guard.rules.schema import FILES, cases_schema, dumps, rules_schema


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "schema", help="print the JSON Schema of rule files",
        description="Print the JSON Schema of rule files, generated from guard's own models. "
        "Point an editor at it with a first line '# yaml-language-server: "
        "$schema=<path or URL>' for completion and inline errors.")
    p.add_argument("--cases", action="store_true",
                   help="the schema of *.cases.yaml files instead")
    p.add_argument("--write", type=Path, metavar="DIR",
                   help=f"write {' and '.join(FILES)} into DIR instead of printing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    schemas = {"rules": rules_schema, "cases": cases_schema}
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, kind in FILES.items():
            (args.write / name).write_text(dumps(schemas[kind]()), encoding="utf-8")
            print(f"wrote {args.write / name}")
        return 0
    print(dumps(schemas["cases" if args.cases else "rules"]()), end="")
    return 0
