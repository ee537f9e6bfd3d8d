"""The ``guard`` command. Each subcommand lives in its own module exposing
``register(subparsers)``; the module list below is the whole registry."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from guard import __version__

COMMANDS = ("run", "check", "explain", "test", "schema", "coverage", "audit", "replay",
            "state", "net", "jail", "ca", "outbox", "sandbox", "pack", "ready")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="guard",
        description="A child-proof egress proxy for AI agent sandboxes.",
    )
    p.add_argument("--version", action="version", version=f"guard {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"guard.cli.{name}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    raw = list(sys.argv[1:] if argv is None else argv)
    # what followed the command name (guard run --workers restarts itself with it)
    args.argv = raw[raw.index(args.command) + 1:] if args.command in raw else []
    try:
        return int(args.func(args) or 0)
    except SystemExit as e:  # a subcommand's way out from deep inside: its exit code
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            return 1
        return int(e.code or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
