"""``guard sandbox``: manage sandboxes.

    guard sandbox token ID --key FILE     print the token derived for sandbox ID
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard.errors import SandboxError
from guard.sandbox import tokens


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sandbox", help="manage sandboxes and their tokens",
                       description="Manage sandboxes: tokens that prove them.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = actions.add_parser("token", help="print the token derived from a guard key for ID",
                           description="Print the token that proves sandbox ID to a guard "
                           "started with --sandbox-key FILE (send it as X-Guard-Sandbox, or "
                           "as the proxy password: http://ID:TOKEN@guard:8080).")
    t.add_argument("id", metavar="ID")
    t.add_argument("--key", type=Path, required=True, metavar="FILE",
                   help="the file given to guard run --sandbox-key")
    t.set_defaults(func=token)


def token(args: argparse.Namespace) -> int:
    try:
        print(tokens.derive(args.id, tokens.load_key(args.key)))
    except SandboxError as e:
        print(f"guard sandbox: {e}", file=sys.stderr)
        return 2
    return 0
