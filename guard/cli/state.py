"""``guard state``: list, export and import the sandbox worlds ``guard run`` journals
(under ``CONFDIR/state``, or its ``--state DIR``).

    guard state list   [--state DIR]
    guard state export [--state DIR] --sandbox NAME OUT.json
    guard state import [--state DIR] --sandbox NAME IN.json

Export writes a snapshot (see :mod:`guard.world.snapshot`); import replaces the named
sandbox's world with one, so a prepared world can be loaded into another sandbox or a
later run (``guard run --world FILE`` forks one into every new sandbox instead). Import
into a sandbox that a running guard has already served is not seen by that guard:
import before its first request, or restart guard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard.cli.common import state_dir
from guard.errors import WorldError
from guard.textsafe import printable
from guard.world import MemoryStore, snapshot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("state", help="list, export or import sandbox worlds",
                       description="Work with the sandbox worlds 'guard run' journals "
                       "(CONFDIR/state, or its --state DIR).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="the sandboxes kept in DIR, with object counts",
                            description="The sandboxes whose worlds are journaled in DIR, "
                            "with the number of objects in each.")
    ls.add_argument("--state", type=Path, default=None, metavar="DIR", help=STATE_HELP)
    ls.set_defaults(func=list_sandboxes)
    for name, what in (("export", "write a sandbox's world to a snapshot file"),
                       ("import", "replace a sandbox's world with a snapshot file")):
        a = actions.add_parser(name, help=what, description=what)
        a.add_argument("--state", type=Path, default=None, metavar="DIR", help=STATE_HELP)
        a.add_argument("--sandbox", required=True, metavar="NAME",
                       help="the sandbox (client address, header or proxy user name)")
        a.add_argument("file", type=Path, metavar="OUT.json" if name == "export" else "IN.json",
                       help="the snapshot file to write" if name == "export" else
                       "the snapshot file to read (guard state export, or guard sandbox "
                       "snapshot's)")
        a.set_defaults(func=export if name == "export" else import_)


STATE_HELP = ("the directory guard run journals worlds to (default: guard run's, "
              "CONFDIR/state unless its environment or config file say otherwise)")


def _state(args: argparse.Namespace) -> Path:
    """The state directory, which must exist (guard makes it when it first runs)."""
    state = state_dir(args.state)
    if not state.is_dir():
        print(f"guard: no state directory {state} (guard run journals worlds there; "
              "it has not run with it yet, or ran with --state off)", file=sys.stderr)
        raise SystemExit(1)
    return state


def list_sandboxes(args: argparse.Namespace) -> int:
    args.state = _state(args)
    store = MemoryStore(state_dir=args.state)
    for name in store.sandboxes():
        w = store.world(name)
        objects = sum(w.count(name) for name in w.collections())
        print(f"{printable(name)}\t{objects} objects")
    return 0


def export(args: argparse.Namespace) -> int:
    args.state = _state(args)
    try:
        store = MemoryStore(state_dir=args.state)
        if args.sandbox not in store.sandboxes():
            raise WorldError(f"no sandbox {printable(args.sandbox)!r} in {args.state}")
        snapshot.write(store.world(args.sandbox).snapshot(), args.file)
    except WorldError as e:
        print(f"guard: {e}", file=sys.stderr)
        return 1
    print(f"guard: exported sandbox {printable(args.sandbox)!r} to {args.file}")
    return 0


def import_(args: argparse.Namespace) -> int:
    args.state = state_dir(args.state)  # import may start a new state directory
    try:
        data = snapshot.read(args.file)
        store = MemoryStore(state_dir=args.state)
        world = store.world(args.sandbox)
        world.load(data)
        store.flush(world)
    except WorldError as e:
        print(f"guard: {e}", file=sys.stderr)
        return 1
    count = sum(len(v) for v in data["collections"].values())
    print(f"guard: imported {count} objects into sandbox {printable(args.sandbox)!r} "
          f"in {args.state}")
    return 0
