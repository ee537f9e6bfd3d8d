"""Read an audit log: the set of files a rotated log spans, and its events in order.

Rotation renames the full file to ``PATH.1``, ``PATH.2``, ... (higher is newer)
and starts a fresh ``PATH``, so the whole log, oldest first, is
``PATH.1 PATH.2 ... PATH``. Naming only ``PATH`` on the command line means that
whole set.

Several writers (``guard run --workers N``, replicas on several hosts) each keep a log
of their own, one hash chain each (``audit.HOST-0.jsonl``, ...). :func:`chains` groups the
files named on a command line (or every log in a named directory) by writer, and
:func:`merged` reads them as one stream ordered by time.

>>> [p.name for p in log_files(Path("/nonexistent/audit.jsonl"))]
['audit.jsonl']
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Line:
    """One line of a log file: the event, or why it could not be read."""

    path: Path
    number: int
    event: dict[str, Any] | None
    problem: str = ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.number}"


def rotated(path: Path) -> list[Path]:
    """``PATH.1``, ``PATH.2``, ... that exist, oldest first."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)$")
    found = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def log_files(path: Path) -> list[Path]:
    """The files of the log whose active file is ``path``, oldest first."""
    return [*rotated(path), path]


def expand(paths: Iterable[Path]) -> list[Path]:
    """Command-line files: one path means its whole rotated set; several are taken as
    given, in the order given."""
    paths = list(paths)
    if len(paths) == 1:
        return [p for p in log_files(paths[0]) if p.exists() or p == paths[0]]
    return paths


_ROTATED = re.compile(r"^(.*)\.(\d+)$")


def chains(paths: Iterable[Path]) -> list[list[Path]]:
    """The logs named on a command line, one list of files (oldest first) per writer.

    A directory stands for every log in it (``*.jsonl`` and their rotated files); a file
    named alone, for its whole rotated set; files of one log named together (``PATH.1
    PATH``) stay one chain in the order given, and files of different logs are different
    chains."""
    out: dict[Path, list[Path]] = {}
    for p in paths:
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.is_file() and f.suffix == ".jsonl":
                    out.setdefault(f, []).extend(x for x in log_files(f) if x.exists())
            continue
        m = _ROTATED.match(p.name)
        out.setdefault(p.with_name(m.group(1)) if m else p, []).append(p)
    for base, files in out.items():
        if files == [base]:
            files[:] = [x for x in log_files(base) if x.exists() or x == base]
    return [files for files in out.values() if files]


def merged(groups: Iterable[list[Path]], *, flows_only: bool = True,
           system: bool = False) -> Iterator[dict[str, Any]]:
    """The events of several writers' logs as one stream, ordered by time (each log is
    in time order already; ties keep the order of the logs given)."""
    return (e for _, e in merged_from(groups, flows_only=flows_only, system=system))


def merged_from(groups: Iterable[list[Path]], *, flows_only: bool = True,
                system: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """:func:`merged`, each event with the name of the log it came from (its live file's:
    ``audit.HOST-1.jsonl`` for ``audit.HOST-1.jsonl.2`` too). Sequence numbers are a
    log's own, so with several writers an event is named by its log and its seq."""
    def tagged(files: list[Path]) -> Iterator[tuple[str, dict[str, Any]]]:
        name = log_name(files[0])
        return ((name, e) for e in events(files, flows_only=flows_only, system=system))

    return heapq.merge(*(tagged(files) for files in groups if files),
                       key=lambda pair: str(pair[1].get("time", "")))


def log_name(path: Path) -> str:
    """The name of the log ``path`` belongs to: its own, without a rotation suffix.

    >>> log_name(Path("/var/log/guard/audit.gw-1.jsonl.3"))
    'audit.gw-1.jsonl'
    """
    m = _ROTATED.match(path.name)
    return m.group(1) if m else path.name


def lines(files: Iterable[Path]) -> Iterator[Line]:
    """Every non-empty line of ``files`` in order; raises OSError if a file cannot be read."""
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    event = json.loads(text)
                except ValueError as e:
                    yield Line(path, n, None, f"not JSON: {e}")
                    continue
                if not isinstance(event, dict):
                    yield Line(path, n, None, "not a JSON object")
                    continue
                yield Line(path, n, event)


def events(files: Iterable[Path], *, flows_only: bool = True,
           system: bool = False) -> Iterator[dict[str, Any]]:
    """The readable events of ``files``. By default, flows only, as :func:`flows` joins
    them (``system=True`` keeps guard's own events among them: reloads, audit outages and
    repairs); ``flows_only=False`` gives every event as written (checkpoints, guard's own
    events, the two events of an allowed flow)."""
    raw = (line.event for line in lines(files) if line.event is not None)
    if not flows_only:
        yield from raw
        return
    yield from flows(raw, system=system)


def not_an_audit_log(files: Iterable[Path]) -> str | None:
    """Why ``files`` are not an audit log guard wrote, or None when each one is (or is
    still empty): its first line must be an audit event (a JSON object with ``v``,
    ``seq`` and ``hash``). A HAR file, a world snapshot or a flow file is refused rather
    than read as a log with nothing in it. Raises OSError when a file cannot be read.

    >>> not_an_audit_log([])
    """
    for path in files:
        if path.is_dir():
            continue
        with open(path, "rb") as f:
            first = f.readline(1 << 20)
        if not first.strip():
            continue
        what = "it is not JSON lines"
        try:
            event = json.loads(first)
        except ValueError:
            if first.lstrip()[:1] in (b"{", b"["):
                what = "it is JSON over several lines (a HAR file or a snapshot?)"
        else:
            if isinstance(event, dict) and all(k in event for k in ("v", "seq", "hash")):
                continue
            if isinstance(event, dict) and "log" in event:
                what = "it is a HAR file"
            elif isinstance(event, dict):
                what = "its first line is a JSON object without v, seq and hash"
        return (f"{path} is not an audit log: {what}; guard audit reads the JSONL log "
                "guard run writes (--audit)")
    return None


def flows(raw: Iterable[dict[str, Any]], *, system: bool = False) -> Iterator[dict[str, Any]]:
    """One complete flow per request, in ``seq`` order, from events as written.

    Schema v2 writes an allowed flow as a ``request`` event (before it was forwarded) and
    a ``flow`` event naming it in ``request_seq`` (when it ended). Joined, they read like
    a v1 flow event: ``seq`` is the request's, ``end_seq`` the completion's. A request
    whose completion never came (guard stopped while it was out) is yielded with
    ``incomplete: true`` and counted as having reached the real world, since it may have.
    With ``system``, guard's own events (kind ``system``) come in ``seq`` order too.

    >>> req = {"seq": 1, "kind": "request", "method": "GET", "action": "allow",
    ...        "request": {"headers": []}, "upstream": False}
    >>> end = {"seq": 2, "kind": "flow", "request_seq": 1, "status": 200, "upstream": True}
    >>> [(f["seq"], f["end_seq"], f["status"], f["method"]) for f in flows([req, end])]
    [(1, 2, 200, 'GET')]
    """
    pending: dict[int, dict[str, Any]] = {}
    pending_seqs: list[int] = []  # heap over pending, lazily cleaned
    held: list[tuple[int, int, dict[str, Any]]] = []  # complete flows, waiting for order
    order = 0
    for e in raw:
        kind = e.get("kind", "flow")
        seq = _seq(e)
        if kind == "request":
            pending[seq] = e
            heapq.heappush(pending_seqs, seq)
            continue
        if kind != "flow" and not (system and kind == "system"):
            continue
        request_seq = e.get("request_seq")
        if isinstance(request_seq, int) and request_seq in pending:
            e = _join(pending.pop(request_seq), e)
            seq = request_seq
        order += 1
        heapq.heappush(held, (seq, order, e))
        while pending_seqs and pending_seqs[0] not in pending:
            heapq.heappop(pending_seqs)
        floor = pending_seqs[0] if pending_seqs else None
        while held and (floor is None or held[0][0] < floor):
            yield heapq.heappop(held)[2]
    for seq, e in pending.items():
        order += 1
        heapq.heappush(held, (seq, order, _incomplete(e)))
    while held:
        yield heapq.heappop(held)[2]


_NOT_JOINED = ("v", "seq", "prev", "hash", "kind", "request_seq")


def _join(request: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
    flow = dict(request)
    flow.update((k, v) for k, v in completion.items() if k not in _NOT_JOINED)
    flow["kind"] = "flow"
    flow["end_seq"] = completion.get("seq")
    return flow


def _incomplete(request: dict[str, Any]) -> dict[str, Any]:
    return {**request, "kind": "flow", "incomplete": True, "upstream": True,
            "response": {"headers": [], "body": None}, "changes": [], "outbox": [],
            "error": "no record of how this allowed request ended (guard stopped while it "
                     "was out?); it may have reached the real world"}


def _seq(e: dict[str, Any]) -> int:
    seq = e.get("seq")
    return seq if isinstance(seq, int) else 0
