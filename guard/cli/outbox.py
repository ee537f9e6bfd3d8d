"""``guard outbox [--state DIR]``: every message guard kept from being sent.

Reads the sandbox worlds that ``guard run`` journals (under ``CONFDIR/state`` unless
``--state`` says otherwise; a guard run with ``--state off`` keeps them in memory only).
Prints a table, or one JSON object per line with ``--json``; filters by provider,
recipient and sandbox.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from guard import outbox
from guard.cli.common import state_dir
from guard.errors import WorldError
from guard.textsafe import dumps, printable

COLUMNS = ("ID", "TIME", "SANDBOX", "PROVIDER", "KIND", "FROM", "TO", "SUBJECT / TEXT")
WIDTHS = (10, 20, 15, 8, 12, 28, 30, 60)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outbox", help="show the messages guard kept from being sent",
                       description="Show every email, SMS, chat message, issue and comment "
                       "that sandboxes tried to send, from the worlds 'guard run' journals.")
    p.add_argument("--state", type=Path, default=None, metavar="DIR",
                   help="the directory guard run journals worlds to (default: guard run's, "
                   "CONFDIR/state unless its environment or config file say otherwise)")
    p.add_argument("--provider", help="only this provider (sendgrid, mailgun, postmark, ses, "
                   "resend, twilio, slack, github, smtp)")
    p.add_argument("--to", metavar="RECIPIENT",
                   help="only messages to, cc or bcc this recipient (case-insensitive "
                   "substring: 'example.com' matches a whole domain)")
    p.add_argument("--sandbox", help="only this sandbox")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="the newest N only")
    p.add_argument("--json", action="store_true",
                   help="one JSON record per line (the full record: bodies, attachments, extra)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        records = outbox.read_state(state_dir(args.state))
    except WorldError as e:
        print(f"guard: {e}", file=sys.stderr)
        return 1
    records = [r for r in records
               if outbox.matches(r, provider=args.provider, to=args.to, sandbox=args.sandbox)]
    if args.limit is not None:
        records = records[-args.limit:] if args.limit > 0 else []
    if args.json:
        for rec in records:
            print(dumps(rec, separators=(",", ":")))
        return 0
    print(table(records))
    return 0


def table(records: list[dict[str, Any]]) -> str:
    """A fixed-width table, one message a line; long values end in an ellipsis.

    >>> table([]).splitlines()[-1]
    '0 message(s)'
    """
    lines = [_row(COLUMNS)]
    for rec in records:
        lines.append(_row((rec.get("id", ""), rec.get("time", ""), rec.get("sandbox", ""),
                           rec.get("provider", ""), rec.get("kind", ""), rec.get("from") or "",
                           _recipients(rec), _summary(rec))))
    lines.append(f"{len(records)} message(s)")
    return "\n".join(lines)


def _recipients(rec: dict[str, Any]) -> str:
    everyone = outbox.recipients(rec)
    if not everyone:
        return ""
    return everyone[0] + (f" +{len(everyone) - 1}" if len(everyone) > 1 else "")


def _summary(rec: dict[str, Any]) -> str:
    text = rec.get("subject") or rec.get("text") or rec.get("html") or ""
    return " ".join(str(text).split())


def _row(values: tuple[Any, ...]) -> str:
    cells = []
    for value, width in zip(values, WIDTHS, strict=True):
        text = printable(value)  # what an agent sent, never what a terminal acts on
        if width:
            text = text if len(text) <= width else text[:width - 1] + "…"
            text = text.ljust(width)
        cells.append(text)
    return "  ".join(cells).rstrip()
