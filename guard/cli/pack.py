"""``guard pack from-openapi SPEC --host HOST --name NAME``: write a pack from an OpenAPI
description (guard/openapi/scaffold.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard.errors import RuleError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pack", help="make rule packs",
                       description="Make rule packs. 'guard pack from-openapi' writes a pack "
                       "that simulates an API from its OpenAPI description.")
    actions = p.add_subparsers(dest="pack_command", metavar="ACTION", required=True)
    f = actions.add_parser("from-openapi", help="write a pack from an OpenAPI description",
                           description="Write DIR/NAME.yaml, a pack that answers every "
                           "operation of SPEC for HOST, with SPEC copied beside it and test "
                           "cases 'guard test' runs. Edit it: your rules override operations.")
    f.add_argument("spec", type=Path, metavar="SPEC",
                   help="OpenAPI 3.0/3.1 description (JSON or YAML, optionally .gz)")
    f.add_argument("--host", required=True, help="the host the API answers on")
    f.add_argument("--name", required=True, help="pack name (lower case), e.g. acme-crm")
    f.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                   help="where to write the pack (default: the current directory)")
    f.add_argument("--force", action="store_true", help="overwrite existing files")
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from guard.openapi.scaffold import scaffold

    try:
        written = scaffold(args.spec, host=args.host, name=args.name, out_dir=args.out,
                           force=args.force)
    except RuleError as e:
        print(str(e), file=sys.stderr)
        return 1
    except (ValueError, FileExistsError, OSError) as e:
        print(f"guard pack from-openapi: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"next: guard check {written[0]} && guard test {written[0]}")
    return 0
