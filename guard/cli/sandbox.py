"""``guard sandbox``: manage a running guard's sandboxes through its admin API.

    guard sandbox create [--id ID] [--from SNAPSHOT|SEED|SANDBOX] [--policy JSON|@FILE]
                         [--ttl SECONDS] [--label K=V]... [--client-address IP]
    guard sandbox fork SOURCE [--id ID] [--policy ...] [--ttl S] [--label K=V]...
    guard sandbox ls [--label K=V]...
    guard sandbox show ID
    guard sandbox snapshot ID [--id SNAPSHOT] [--label K=V]...
    guard sandbox snapshots
    guard sandbox restore ID SNAPSHOT
    guard sandbox reset ID
    guard sandbox rm ID...
    guard sandbox diff ID --since SNAPSHOT|VERSION
    guard sandbox events ID [--after N] [--follow]
    guard sandbox token ID --key FILE     (offline: the token derived from a guard key)

``--admin URL`` (default ``$GUARD_ADMIN`` or http://127.0.0.1:9090); the token comes
from ``$GUARD_ADMIN_TOKEN``, ``--token-file FILE`` or ``~/.guard/admin-token``. Every
command prints a table for people, or JSON with ``--json``. Text that came from a
sandbox (labels, ids, diff values) is printed with control characters escaped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from guard.errors import SandboxError
from guard.sandbox import tokens
from guard.textsafe import dumps

DEFAULT_ADMIN = "http://127.0.0.1:9090"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sandbox", help="create, fork, snapshot, diff and delete sandboxes",
                       description="Manage a running guard's sandboxes through its admin API "
                       "(guard run --admin-listen HOST:PORT).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str, func: Callable[[argparse.Namespace], int],
               admin: bool = True) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help, description=help)
        if admin:
            a.add_argument("--admin", default=os.environ.get("GUARD_ADMIN", DEFAULT_ADMIN),
                           metavar="URL", help="the admin API (default $GUARD_ADMIN or "
                           f"{DEFAULT_ADMIN})")
            a.add_argument("--token-file", type=Path, metavar="FILE",
                           help="the admin token (default $GUARD_ADMIN_TOKEN, else "
                           "~/.guard/admin-token)")
            a.add_argument("--json", action="store_true", help="print JSON, not a table")
        a.set_defaults(func=func)
        return a

    def policy_options(a: argparse.ArgumentParser) -> None:
        a.add_argument("--id", help="the new sandbox's id (default: generated)")
        a.add_argument("--policy", metavar="JSON|@FILE",
                       help='its policy, e.g. \'{"disable_packs": ["github"]}\'')
        a.add_argument("--ttl", type=float, metavar="SECONDS",
                       help="delete it after this long without activity")
        a.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                       help="a label to find it by (repeatable)")
        a.add_argument("--client-address", metavar="IP",
                       help="requests from this address are this sandbox, without a token")

    a = action("create", "create a sandbox (empty, from a snapshot, a seed or a sandbox)",
               create)
    policy_options(a)
    a.add_argument("--from", dest="source", metavar="SNAPSHOT|SEED|SANDBOX",
                   help="start from a snapshot id, a seed name (stripe-catalogue) or a "
                   "copy of a sandbox")
    a = action("fork", "a new sandbox whose world is a copy of SOURCE's now", fork)
    a.add_argument("source", metavar="SOURCE", help="the sandbox to copy")
    policy_options(a)
    a = action("ls", "list sandboxes", ls)
    a.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="only sandboxes with this label (repeatable: all must match)")
    a = action("show", "one sandbox: policy, labels, world counts", show)
    a.add_argument("id", metavar="ID", help="the sandbox's id")
    a = action("snapshot", "take an immutable snapshot of a sandbox's world", snapshot)
    a.add_argument("id", metavar="ID", help="the sandbox's id")
    a.add_argument("--id", dest="snapshot_id", metavar="SNAPSHOT", help="its id")
    a.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="a label for the snapshot (repeatable)")
    action("snapshots", "list snapshots", snapshots)
    a = action("restore", "make a sandbox's world a snapshot", restore)
    a.add_argument("id", metavar="ID", help="the sandbox's id")
    a.add_argument("snapshot", metavar="SNAPSHOT", help="the snapshot's id")
    a = action("reset", "put a sandbox's world back to what it was created from", reset)
    a.add_argument("id", metavar="ID", help="the sandbox's id")
    a = action("rm", "delete sandboxes (their worlds are gone, their tokens refused)", rm)
    a.add_argument("ids", nargs="+", metavar="ID", help="the sandboxes' ids")
    a = action("diff", "what changed in a sandbox's world since a snapshot or version", diff)
    a.add_argument("id", metavar="ID", help="the sandbox's id")
    a.add_argument("--since", required=True, metavar="SNAPSHOT|VERSION",
                   help="a snapshot id, or a world version number")
    a = action("events", "a sandbox's events (what it sees at guard.internal)", events)
    a.add_argument("id", metavar="ID", help="the sandbox's id")
    a.add_argument("--after", type=int, default=0, metavar="N",
                   help="only events after event N (default 0: all)")
    a.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    t = action("token", "print the token derived from a guard key for ID (offline)", token,
               admin=False)
    t.add_argument("id", metavar="ID", help="the sandbox's id")
    t.add_argument("--key", type=Path, required=True, metavar="FILE",
                   help="the file given to guard run --sandbox-key")


# the commands

def create(args: argparse.Namespace) -> int:
    return _run(args, lambda a: a.create(args.id, from_=args.source, **_options(args)),
                _sandbox_table)


def fork(args: argparse.Namespace) -> int:
    return _run(args, lambda a: a.fork(args.source, args.id, **_options(args)),
                _sandbox_table)


def ls(args: argparse.Namespace) -> int:
    return _run(args, lambda a: list(a.list(labels=_labels(args.label))), _sandboxes_table)


def show(args: argparse.Namespace) -> int:
    return _run(args, lambda a: a.get(args.id), _sandbox_table)


def snapshot(args: argparse.Namespace) -> int:
    return _run(args, lambda a: a.snapshot(args.id, args.snapshot_id,
                                           labels=_labels(args.label) or None),
                lambda s: _table([_snapshot_row(s)], SNAPSHOT_COLUMNS))


def snapshots(args: argparse.Namespace) -> int:
    return _run(args, lambda a: a.snapshots(),
                lambda found: _table([_snapshot_row(s) for s in found], SNAPSHOT_COLUMNS))


def restore(args: argparse.Namespace) -> int:
    return _run(args, lambda a: a.restore(args.id, args.snapshot), _sandbox_table)


def reset(args: argparse.Namespace) -> int:
    return _run(args, lambda a: a.reset(args.id), _sandbox_table)


def rm(args: argparse.Namespace) -> int:
    def remove(a: Any) -> list[str]:
        for sandbox in args.ids:
            a.delete(sandbox)
        return list(args.ids)

    return _run(args, remove, lambda ids: "\n".join(f"deleted {_esc(i)}" for i in ids))


def diff(args: argparse.Namespace) -> int:
    return _run(args, lambda a: a.diff(args.id, args.since), _diff_text)


def events(args: argparse.Namespace) -> int:
    if args.follow:
        return _run(args, lambda a: _follow(a, args), None)
    return _run(args, lambda a: a.events(args.id, args.after, 1000),
                lambda found: "\n".join(_event_line(e) for e in found))


def token(args: argparse.Namespace) -> int:
    try:
        print(tokens.derive(args.id, tokens.load_key(args.key)))
    except SandboxError as e:
        print(f"guard sandbox: {e}", file=sys.stderr)
        return 2
    return 0


# plumbing

def _run(args: argparse.Namespace, call: Callable[[Any], Any],
         render: Callable[[Any], str] | None) -> int:
    import httpx

    from guard.client import Admin, AdminError, default_token

    secret = None
    if args.token_file is not None:
        try:
            secret = args.token_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as e:
            print(f"guard sandbox: cannot read {args.token_file}: {e}", file=sys.stderr)
            return 2
    secret = secret or default_token()
    if not secret:
        print("guard sandbox: no admin token: set GUARD_ADMIN_TOKEN or pass --token-file",
              file=sys.stderr)
        return 2
    try:
        with Admin(args.admin, secret) as admin:
            result = call(admin)
    except AdminError as e:
        print(f"guard sandbox: {e.status} {e.kind}: {_esc(e.message)}", file=sys.stderr)
        return 1
    except (httpx.HTTPError, ValueError) as e:
        print(f"guard sandbox: cannot reach the admin API at {args.admin}: {e}",
              file=sys.stderr)
        return 1
    if render is None:
        return 0
    if args.json:
        print(dumps(_plain(result), indent=1))
    else:
        print(render(result))
    return 0


def _follow(admin: Any, args: argparse.Namespace) -> None:
    for e in admin.stream(args.id, args.after):
        if args.json:
            print(dumps(e), flush=True)
        else:
            print(_event_line(e), flush=True)


def _plain(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _options(args: argparse.Namespace) -> dict[str, Any]:
    policy = None
    if args.policy:
        text = args.policy
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        try:
            policy = json.loads(text)
        except ValueError as e:
            raise ValueError(f"--policy is not JSON: {e}") from None
    return {"policy": policy, "ttl_seconds": args.ttl, "labels": _labels(args.label) or None,
            "client_address": args.client_address}


def _labels(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep:
            raise ValueError(f"--label takes KEY=VALUE, not {v!r}")
        out[key] = value
    return out


def _esc(value: object) -> str:
    """Control characters escaped, so sandbox-made text cannot rewrite the terminal."""
    text = str(value)
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


SANDBOX_COLUMNS = ("ID", "OBJECTS", "VERSION", "POLICY", "TTL", "PARENT", "LABELS")
SNAPSHOT_COLUMNS = ("ID", "SOURCE", "VERSION", "OBJECTS", "LABELS")


def _sandbox_row(s: Any) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
    return [s.id, str(s.world.get("objects", 0)), str(s.world.get("version", "-")),
            s.policy_label, "-" if s.ttl_seconds is None else f"{s.ttl_seconds:g}s",
            s.parent or "-", labels or "-"]


def _snapshot_row(s: Any) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
    return [s.id, s.source or "-", str(s.version), str(s.objects), labels or "-"]


def _table(rows: Iterable[Sequence[str]], columns: Sequence[str]) -> str:
    cells = [list(columns)] + [[_esc(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


def _sandboxes_table(found: list[Any]) -> str:
    return _table([_sandbox_row(s) for s in found], SANDBOX_COLUMNS)


def _sandbox_table(s: Any) -> str:
    out = _table([_sandbox_row(s)], SANDBOX_COLUMNS)
    counts = s.world.get("counts") or {}
    if counts:
        out += "\n\n" + _table([[c, str(n)] for c, n in sorted(counts.items())],
                               ("COLLECTION", "OBJECTS"))
    if s.token:
        out += (f"\n\ntoken: {s.token}\n(shown once: send it as X-Guard-Sandbox or as the "
                f"proxy password, http://{s.id}:TOKEN@guard:8080)")
    return out


def _diff_text(d: dict[str, Any]) -> str:
    lines = [f"sandbox {_esc(d.get('sandbox'))} since {_esc(d.get('since'))} "
             f"(now version {d.get('version')})"]
    for name, c in sorted((d.get("collections") or {}).items()):
        for obj in c.get("created", []):
            lines.append(f"+ {_esc(name)} {_esc(obj.get('id'))}")
        for ch in c.get("changed", []):
            for field, v in sorted((ch.get("fields") or {}).items()):
                lines.append(f"~ {_esc(name)} {_esc(ch.get('id'))} {_esc(field)}: "
                             f"{_esc(json.dumps(v.get('before')))} -> "
                             f"{_esc(json.dumps(v.get('after')))}")
        for obj in c.get("deleted", []):
            lines.append(f"- {_esc(name)} {_esc(obj.get('id'))}")
    for m in d.get("outbox") or []:
        lines.append(f"> outbox {_esc(m.get('provider'))} to {_esc(m.get('to'))}: "
                     f"{_esc(m.get('subject') or m.get('text') or '')[:80]}")
    if len(lines) == 1:
        lines.append("no changes")
    return "\n".join(lines)


def _event_line(e: dict[str, Any]) -> str:
    return _esc(f"{e.get('id', e.get('seq'))}  {e.get('time', '')}  {e.get('method', '')} "
                f"{e.get('url', '')}  -> {e.get('action', '')} ({e.get('rule', '')})")
