"""The ``guard`` command. Each subcommand lives in its own module exposing
``register(subparsers)``; the module list below is the whole registry."""

from __future__ import annotations

import argparse
import difflib
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
    _plain(p)
    return p


def _plain(p: argparse.ArgumentParser) -> None:
    """Help is read on a terminal: docstrings' RST double backticks go (``guard run`` reads
    as guard run), in every subcommand's description and every argument's help."""
    p.description = p.description and p.description.replace("``", "")
    for action in p._actions:
        if isinstance(action.help, str):
            action.help = action.help.replace("``", "")
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if isinstance(choice.help, str):
                    choice.help = choice.help.replace("``", "")
            for sub in action.choices.values():
                _plain(sub)


# flags people bring from other proxies, and what guard calls them
FAMILIAR = {"--port": "--listen-port", "-p": "--listen-port", "--host": "--listen-host",
            "--bind": "--listen-host", "--listen": "--listen-host", "--verbose": "",
            "--quiet": "-q", "--rule": "--rules", "--rules-dir": "--rules",
            "--ca": "--confdir", "--log": "--audit", "--set": ""}


def unknown(p: argparse.ArgumentParser, argv: Sequence[str], extra: list[str]) -> str:
    """``guard <command>: error: ...`` for arguments the command does not take, with the
    command's own usage and the flag that was probably meant (``--port`` -> ``--listen-port``)."""
    sub, name = p, "guard"
    words = [a for a in argv if not a.startswith("-")]
    while words:  # the innermost subcommand that was chosen (guard audit list, ...)
        action = next((a for a in sub._actions
                       if isinstance(a, argparse._SubParsersAction)), None)
        if action is None or words[0] not in action.choices:
            break
        sub, name = action.choices[words[0]], f"{name} {words[0]}"
        words = words[1:]
    known = [o for a in sub._actions for o in a.option_strings
             if a.help != argparse.SUPPRESS]
    lines = []
    after_flag = False
    for arg in extra:
        flag = arg.split("=", 1)[0]
        if not flag.startswith("-"):
            if not after_flag:  # else it is most likely the unknown flag's value
                lines.append(f"{name} takes no argument {arg!r} here")
            after_flag = False
            continue
        after_flag = "=" not in arg
        if flag in FAMILIAR:
            meant = [FAMILIAR[flag]] if FAMILIAR[flag] in known else []
        else:
            meant = difflib.get_close_matches(flag, known, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(meant)}?" if meant else ""
        lines.append(f"{name} has no option {flag}{hint}")
    usage = sub.format_usage()
    if usage.count("\n") > 6:  # guard run's: the message would scroll away under it
        usage = ""
    return (usage + "\n".join(f"{name}: error: {x}" for x in lines) +
            f"\n({name} --help describes every option)\n")


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    args, extra = p.parse_known_args(raw)
    if extra:  # (guard jail's command, after --, is its own argument: never extra)
        sys.stderr.write(unknown(p, raw, extra))
        return 2
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
