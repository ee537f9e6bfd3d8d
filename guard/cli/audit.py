"""guard audit: verify, query, follow and export an audit log.

FILE is the log (guard run --audit PATH); without FILE, the log guard run writes
here by default (CONFDIR/audit/, every writer's file in it). With rotation, naming
PATH alone takes PATH.1, PATH.2, ... PATH in order. list, summary, tail and the
HTML report include guard's own events (kind system: rule reloads, audit outages
and repairs). Exit codes: 0 ok, 1 the log is not intact (verify) or the event does
not exist (show), 2 the log or key cannot be read, or is not an audit log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from guard.audit.reader import (
    chains,
    events,
    expand,
    log_name,
    merged,
    merged_from,
    not_an_audit_log,
)
from guard.audit.signing import keygen, load_key
from guard.audit.verify import verify
from guard.cli.common import audit_files
from guard.errors import AuditError
from guard.flowlog import color_wanted, json_line, line, shows
from guard.forensics.query import TIME_HELP, Filter, guard_event, parse_when, select, summary
from guard.forensics.tail import POLL_SECONDS, DirectoryFollower, Follower
from guard.textsafe import dumps, printable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="verify, query and export the audit log",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)

    v = cmds.add_parser("verify", help="prove the log intact, or name the first bad event")
    _files(v)
    v.add_argument("--key", type=Path, metavar="FILE",
                   help="check signed checkpoints and that the log was not cut short "
                   "(HMAC secret, or Ed25519 public or private key)")
    v.add_argument("--partial", action="store_true",
                   help="accept a log whose oldest files were deleted (starts after seq 1)")
    v.set_defaults(func=run_verify)

    ls = cmds.add_parser("list", help="list events, filtered")
    _files(ls)
    _filters(ls)
    ls.add_argument("--json", action="store_true", help="one JSON event per line")
    ls.set_defaults(func=run_list)

    tl = cmds.add_parser("tail", help="the latest events; -f follows the live log",
                         description="Print the last N events (flows and guard's own "
                         "events) as guard run prints them, one line each; with -f keep "
                         "printing new ones as they are written, across rotation, until "
                         "Ctrl-C. Takes the same filters as list.")
    _files(tl)
    _filters(tl)
    tl.add_argument("-n", "--lines", type=int, default=10, metavar="N",
                    help="how many past events to print first (default 10; 0 for none)")
    tl.add_argument("-f", "--follow", action="store_true",
                    help="keep following the log as guard writes it")
    tl.add_argument("--json", action="store_true",
                    help="one JSON object per event, as guard run --log-format json")
    tl.set_defaults(func=run_tail)

    sh = cmds.add_parser("show", help="one event in full, as a request/response view",
                         description="Show one event: the request and response with their "
                         "headers and bodies (redacted as logged), the decision, and the "
                         "world changes it made. Both events of an allowed flow name it.")
    sh.add_argument("file", type=Path, metavar="FILE", nargs="?",
                    help="the log (default: guard run's, in CONFDIR/audit/)")
    sh.add_argument("seq", type=int, metavar="SEQ", help="the event's sequence number")
    sh.add_argument("--json", action="store_true", help="the event as logged, as JSON")
    sh.set_defaults(func=run_show)

    sm = cmds.add_parser("summary", help="counts, top blocked attempts, what reached the "
                         "real world")
    _files(sm)
    _filters(sm)
    sm.add_argument("--json", action="store_true", help="the summary as one JSON object")
    sm.set_defaults(func=run_summary)

    ex = cmds.add_parser("export", help="export as HAR, mitmproxy flows or an HTML report")
    _files(ex)
    _filters(ex)
    ex.add_argument("--har", type=Path, metavar="OUT", help="HAR 1.2 file")
    ex.add_argument("--mitm", type=Path, metavar="OUT",
                    help="mitmproxy flow file (mitmweb -r OUT)")
    ex.add_argument("--html", type=Path, metavar="OUT", help="single-file HTML report")
    ex.add_argument("--key", type=Path, metavar="FILE",
                    help="check signatures for the report's integrity line")
    ex.set_defaults(func=run_export)

    kg = cmds.add_parser("keygen", help="make a key for --audit-key",
                         description="Write a new key for guard run --audit-key: an HMAC "
                         "secret, or with --ed25519 a key pair. Never overwrites a file.")
    kg.add_argument("out", type=Path, metavar="OUT",
                    help="where to write the key (the Ed25519 public key goes to OUT.pub)")
    kg.add_argument("--ed25519", action="store_true",
                    help="an Ed25519 key pair (OUT and OUT.pub; verifiers need only OUT.pub) "
                    "instead of an HMAC secret")
    kg.set_defaults(func=run_keygen)

    from guard.cli import coverage

    cov = cmds.add_parser("coverage", help="rules that never fired, and requests no rule "
                          "matched", description=coverage.DESCRIPTION)
    coverage.add_arguments(cov)


def _files(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", type=Path, metavar="FILE",
                   help="the log (with its rotated files), several writers' logs (merged by "
                   "time, each chain verified on its own), or a directory of logs "
                   "(default: guard run's, CONFDIR/audit/)")


ACTIONS = ("simulate", "block", "allow", "error",
           "reload", "reload-failed", "recover", "repair", "retention")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="host or glob (*.stripe.com)")
    p.add_argument("--action", action="append", default=[], choices=ACTIONS,
                   help="what was done: simulate, block, allow, error for requests; reload, "
                   "reload-failed, recover, repair, retention for guard's own events; "
                   "repeatable")
    p.add_argument("--rule", help="rule id or glob (stripe.*)")
    p.add_argument("--status", help="status code or class (404, 4xx)")
    p.add_argument("--sandbox", help="sandbox name or glob")
    p.add_argument("--since", type=_when, metavar="TIME", help=TIME_HELP)
    p.add_argument("--until", type=_when, metavar="TIME", help="the same forms (exclusive)")
    p.add_argument("--upstream", action="store_true", default=None,
                   help="only requests that connected to the real host")
    p.add_argument("--kind", action="append", default=[], choices=("flow", "system"),
                   help="flow (requests) or system (guard's own events: reloads, audit "
                   "outages); repeatable; default both")


def _when(text: str) -> Any:
    try:
        return parse_when(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _filter(args: argparse.Namespace) -> Filter:
    return Filter(host=args.host, action=args.action, rule=args.rule, status=args.status,
                  sandbox=args.sandbox, since=args.since, until=args.until,
                  upstream=args.upstream, kind=args.kind)


def _logs(args: argparse.Namespace) -> list[Path]:
    """The files named (else guard run's default log), refused unless each is an audit
    log (a HAR file or a world snapshot is not read as an empty log)."""
    files = audit_files(args.files)
    for f in files:
        if not f.exists():
            raise SystemExit(_fail(f"no audit log at {f}" + (
                "" if args.files else " (guard run writes it there once it has served a "
                "request; name another log as FILE)")))
    try:
        why = not_an_audit_log(f for g in chains(files) for f in g if f.exists())
    except OSError as e:
        raise SystemExit(_fail(f"cannot read {e.filename}: {e.strerror}")) from e
    if why:
        raise SystemExit(_fail(why))
    return files


def _read(args: argparse.Namespace) -> list[dict[str, Any]]:
    return _read_from(args)[0]


def _read_from(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[int, str] | None]:
    """The selected events of the logs named, merged by time, and with several writers'
    logs which log each came from (by the event's ``id()``: each writer numbers its own,
    so a seq alone names no event); None for one log."""
    groups = chains(_logs(args))
    try:
        tagged = list(merged_from(groups, system=True))
    except OSError as e:
        raise SystemExit(_fail(f"cannot read {e.filename}: {e.strerror}")) from e
    logs = {id(e): name for name, e in tagged} if len(groups) > 1 else None
    return select([e for _, e in tagged], _filter(args)), logs


def _fail(message: str) -> int:
    print(f"guard audit: {message}", file=sys.stderr)
    return 2


def run_verify(args: argparse.Namespace) -> int:
    # not _logs(): a log whose first line was damaged is "not intact" (exit 1), not refused
    given = bool(args.files)
    args.files = audit_files(args.files)
    if not given and not any(f.exists() for f in args.files):
        return _fail(f"no audit log at {args.files[0]} (guard run writes it there once it "
                     "has served a request; name another log as FILE)")
    groups = chains(args.files)
    if not groups:
        return _fail("no audit log found in " + ", ".join(str(f) for f in args.files))
    failed = 0
    for files in groups:  # one hash chain per writer, each verified on its own
        try:
            key = load_key(args.key) if args.key else None
            v = verify(files, key, partial=args.partial)
        except AuditError as e:
            return _fail(str(e))
        except OSError as e:
            return _fail(f"cannot read {e.filename}: {e.strerror}")
        names = ", ".join(str(f) for f in files)
        if not v.ok:
            failed += 1
            print(f"FAIL: seq {v.first_bad}: {v.problem}"
                  + (f" ({v.where})" if v.where else ""))
            print(f"  checked {v.events} good event(s) before it in {names}")
            continue
        signed = f", {v.signed} signed checkpoint(s) verified" if v.signed else ""
        print(f"ok: {v.events} events ({v.flows} flows, {v.checkpoints} checkpoints{signed}) "
              f"in {names}")
        print(f"  last seq {v.last_seq}, hash {v.last_hash}")
        for note in v.notes:
            print(f"  note: {note}")
    if len(groups) > 1:
        print(f"{len(groups) - failed} of {len(groups)} chains intact")
    return 1 if failed else 0


def run_list(args: argparse.Namespace) -> int:
    found, logs = _read_from(args)
    if args.json:
        for e in found:
            print(dumps(e))
        return 0
    if logs is None:
        print(HEADING)
        for e in found:
            print(row(e))
    else:  # each writer numbers its own log: a seq is named by its log (audit show LOG SEQ)
        width = max((len(name) for name in logs.values()), default=3)
        print(f"{'LOG':<{width}}  {HEADING}")
        for e in found:
            print(f"{printable(logs[id(e)]):<{width}}  {row(e)}")
    print(f"({len(found)} event(s))", file=sys.stderr)
    return 0


# one format for heading and rows, so they line up (a time is 24 characters)
_ROW = "{:>6}  {:<24}  {:<15}  {:<13}  {:>3}  {:<30}  {}"
HEADING = _ROW.format("SEQ", "TIME", "SANDBOX", "ACTION", "ST", "RULE", "REQUEST").rstrip()


def row(e: dict[str, Any]) -> str:
    """One event as a row of the ``list`` table; a system event shows its reason where a
    flow shows its request. Everything an agent controls is made printable.

    >>> row({"seq": 7, "time": "2026-01-01T00:00:00.000Z", "kind": "system",
    ...      "action": "reload", "rule": "guard.reload", "reason": "rules reloaded"})[34:]
    '-                reload           -  guard.reload                    rules reloaded'
    """
    status = "-" if e.get("status") is None else str(e.get("status"))
    if guard_event(e):
        request = printable(_cut(str(e.get("reason", "")), 120))
    else:
        up = " [upstream]" if e.get("upstream") else ""
        request = (f"{printable(e.get('method', ''))} "
                   f"{printable(_cut(str(e.get('url', '')), 100))}{up}")
    return _ROW.format(e.get("seq", ""), printable(e.get("time", "")),
                       printable(_cut(str(e.get("sandbox", "")), 15)) or "-",
                       printable(_cut(str(e.get("action", "")), 13)), status,
                       printable(_cut(str(e.get("rule", "")), 30)), request)


def run_tail(args: argparse.Namespace) -> int:
    files = _logs(args) if not args.follow else audit_files(args.files)
    flt = _filter(args)
    color = color_wanted(sys.stdout)

    def emit(e: dict[str, Any]) -> None:
        print(json_line(e) if args.json else line(e, color=color), flush=True)

    followers: list[Follower | DirectoryFollower] = []
    past: list[dict[str, Any]] = []
    try:
        if args.follow:
            # start following before reading the past, so nothing written between is lost
            followers = [DirectoryFollower(f, from_end=True) if f.is_dir() or not f.suffix
                         else Follower(f, from_end=True) for f in files]
        if args.lines > 0 and any(f.exists() for f in files):
            if not args.follow:
                files = _logs(args)
            elif (why := not_an_audit_log(x for g in chains(files) for x in g
                                          if x.exists())):
                return _fail(why)
            past = select(merged(chains([f for f in files if f.exists()]), system=True),
                          flt)[-args.lines:]
    except OSError as err:
        return _fail(f"cannot read {err.filename}: {err.strerror}")
    for event in past:
        emit(event)
    if not args.follow:
        return 0
    import time

    try:
        while True:
            for f in followers:
                for event in f.poll():
                    if shows(event) and flt.matches(event):
                        emit(event)
            time.sleep(POLL_SECONDS)
    finally:
        for f in followers:
            f.close()


def run_show(args: argparse.Namespace) -> int:
    """The flow a seq belongs to (both events of an allowed flow name it), or the event."""
    from guard.cli.audit_show import render

    args.files = [args.file] if args.file is not None else []
    logs = _logs(args)
    show = (lambda e: dumps(e, indent=2)) if args.json else render
    found: list[tuple[list[Path], dict[str, Any]]] = []  # one per log that has the seq
    try:
        for group in chains(logs):
            files = expand(group) if len(group) == 1 else group
            hit = next((e for e in events(files)
                        if args.seq in (e.get("seq"), e.get("end_seq"))), None)
            if hit is None:
                hit = next((e for e in events(files, flows_only=False)
                            if e.get("seq") == args.seq), None)
            if hit is not None:
                found.append((files, hit))
    except BrokenPipeError:
        raise
    except OSError as e:
        return _fail(f"cannot read {e.filename}: {e.strerror}")
    if len(found) > 1:  # several writers: each numbers its own log
        names = ", ".join(str(files[-1]) for files, _ in found)
        return _fail(f"seq {args.seq} is in {len(found)} logs ({names}): each writer "
                     f"numbers its own; name one, e.g. guard audit show "
                     f"{found[0][0][-1]} {args.seq} (guard audit list shows each event's "
                     "LOG)")
    if found:
        print(show(found[0][1]))
        return 0
    where = ", ".join(str(f) for f in logs)
    print(f"guard audit: no event with seq {args.seq} in {where}", file=sys.stderr)
    return 1


def run_summary(args: argparse.Namespace) -> int:
    s = summary(_read(args))
    if args.json:
        print(dumps(s, indent=2))
        return 0
    print(f"{s['events']} request(s) from {s['first'] or '-'} to {s['last'] or '-'}")
    for title, key in (("by action", "by_action"), ("by host", "by_host"),
                       ("by rule", "by_rule"), ("by sandbox", "by_sandbox")):
        print(f"\n{title}:")
        for name, n in list(s[key].items())[:20]:
            print(f"  {n:>6}  {printable(name)}")
    print("\ntop blocked attempts:")
    for t in s["top_blocked"] or [{"count": "", "endpoint": "(none)", "rule": ""}]:
        print(f"  {t['count']:>6}  {printable(t['endpoint'])}  {printable(t['rule'])}")
    out = s["reached_real_world"]
    print(f"\nreached the real world: {out['count']} request(s)"
          + (f" (seq {', '.join(map(str, out['seqs'][:50]))})" if out["seqs"] else ""))
    for ep in out["endpoints"]:
        print(f"  {ep['count']:>6}  {printable(ep['endpoint'])}")
    if s["allowed_without_connecting"]:
        print(f"allowed but never connected: seq "
              f"{', '.join(map(str, s['allowed_without_connecting'][:50]))}")
    print(f"\noutbox records: {s['outbox']}")
    print(f"\nrule reloads and guard's own events: {len(s['guard_events'])}")
    for g in s["guard_events"][:50]:
        print(f"  seq {g['seq']}  {g['time']}  {printable(g['rule'])} {printable(g['action'])}: "
              f"{printable(_cut(str(g['reason']), 160))}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    if not (args.har or args.mitm or args.html):
        return _fail("say what to export: --har OUT, --mitm OUT and/or --html OUT")
    found, logs = _read_from(args)
    if args.har:
        from guard.forensics.har import har

        args.har.write_text(json.dumps(har(found), indent=1, ensure_ascii=False))
        print(f"wrote {args.har} (HAR 1.2, {len(found)} entries)")
    if args.mitm:
        from guard.proxy.flowfile import write_flows

        print(f"wrote {args.mitm} ({write_flows(found, args.mitm)} mitmproxy flows)")
    if args.html:
        from guard.forensics.report import render

        groups = chains(audit_files(args.files))
        files = [f for g in groups for f in g]
        try:
            key = load_key(args.key) if args.key else None
            verdicts = [verify(g, key) for g in groups]
        except AuditError as e:
            return _fail(str(e))
        # one log: its verdict; several: every chain's, and each event's seq with its log
        verdict = next((v for v in verdicts if not v.ok), verdicts[-1] if verdicts else None)
        named = [(log_name(g[-1]), v) for g, v in zip(groups, verdicts, strict=True)]
        # the report's rows are events or records made from them: named by (seq, time)
        by_seq = None if logs is None else {(e.get("seq"), e.get("time")): logs[id(e)]
                                            for e in found}
        args.html.write_text(render(found, sources=files, verdict=verdict, chains=named,
                                    logs=by_seq), encoding="utf-8")
        print(f"wrote {args.html} (HTML report, {len(found)} events)")
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    try:
        written = keygen(args.out, ed25519=args.ed25519)
    except FileExistsError:
        return _fail(f"{args.out} exists; not overwriting a key")
    for path in written:
        print(f"wrote {path}")
    if args.ed25519:
        print(f"run guard with --audit-key {written[0]}; verify with --key {written[1]}")
    else:
        print(f"run guard with --audit-key {args.out}; verify with --key {args.out} "
              "(keep it secret: whoever has it can also sign)")
    return 0


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
