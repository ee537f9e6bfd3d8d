"""The web console's flow list: the last flows across all sandboxes, in memory.

Fed by the audit recorder with every event it writes (already redacted: the console never
sees a secret the log does not hide), kept as the live feed keeps them (bodies and
changed objects cut, :data:`BODY_LIMIT`), at most :data:`KEEP` flows. An allowed flow is
two events in the log (its request before it leaves, its end); here it is one flow,
pending until its end arrives.

Every change (a new flow, or a pending one ending) gets the next *version*; the console
asks for the flows changed after the version it has (:meth:`FlowLog.changed_since`) and
waits for more (:meth:`FlowLog.wait`): that is its live stream.

Also kept: hits per rule (the console's rules page) and the requests no rule matched,
grouped by method, host and path (at most :data:`MAX_UNMATCHED` groups; the oldest go).

Per event the cost is a shallow copy of the event with its bodies cut, two dict writes
and a deque append; nothing is serialized until a browser asks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from guard.decision import DEFAULT_RULE_ID
from guard.internal_host import feed_event

KEEP = 1000
BODY_LIMIT = 8 * 1024
MAX_UNMATCHED = 500
MAX_SANDBOXES_SHOWN = 20  # per unmatched group

SUMMARY_FIELDS = ("time", "sandbox", "method", "url", "host", "rule", "action", "status",
                  "duration_ms", "upstream", "policy", "error", "worker")


@dataclass
class Unmatched:
    """Requests no rule matched with the same method, host and path."""

    method: str
    host: str
    path: str
    count: int = 0
    first: str = ""
    last: str = ""
    sandboxes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "host": self.host, "path": self.path,
                "count": self.count, "first": self.first, "last": self.last,
                "sandboxes": self.sandboxes}


@dataclass
class Filters:
    """What the flow list shows: sandbox and action exactly, host and rule as substrings
    (``stripe`` finds every Stripe host and rule). The console's script applies the same
    test to flows that arrive live."""

    sandbox: str = ""
    host: str = ""
    rule: str = ""
    action: str = ""

    def admit(self, flow: dict[str, Any]) -> bool:
        return ((not self.sandbox or flow.get("sandbox") == self.sandbox)
                and (not self.action or flow.get("action") == self.action)
                and (not self.host or self.host in str(flow.get("host", "")))
                and (not self.rule or self.rule in str(flow.get("rule", ""))))


class FlowLog:
    """The flows the console shows. ``observe`` is the audit recorder's observer."""

    def __init__(self, keep: int = KEEP, body_limit: int = BODY_LIMIT, *,
                 worker: int | None = None) -> None:
        self.keep = keep
        self.body_limit = body_limit
        # in a gateway (--workers): this worker's index, shown on its own flows; the other
        # workers' flows come with theirs (guard.console.remote)
        self.worker = worker
        self.flows: OrderedDict[int, dict[str, Any]] = OrderedDict()  # id -> flow, oldest first
        # (worker, audit seq) of an allowed request -> flow id: each worker has its own seq
        self._pending: dict[tuple[Any, Any], int] = {}
        self._changes: deque[tuple[int, int]] = deque(maxlen=keep * 2)  # (version, id)
        self.version = 0
        self._next_id = 0
        self.hits: dict[str, list[Any]] = {}  # rule id -> [count, last time]
        self.unmatched: OrderedDict[tuple[str, str, str], Unmatched] = OrderedDict()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self.closed = False  # guard is stopping: live streams end

    def close(self) -> None:
        """End every live stream (guard is shutting down)."""
        self.closed = True
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.set()

    # fed by the recorder

    def observe(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "request":
            flow = self._add(event, pending=True)
            seq = event.get("seq")
            if isinstance(seq, int):
                self._pending[(event.get("worker"), seq)] = flow["id"]
        elif kind == "flow":
            started = self._pending.pop((event.get("worker"), event.get("request_seq")), None)
            begun = self.flows.get(started) if started is not None else None
            if begun is not None:
                self._finish(begun, event)
                flow = begun
            else:
                flow = self._add(event, pending=False)
            self._count(flow)
        else:
            return
        self._changed(flow["id"])

    def _add(self, event: dict[str, Any], *, pending: bool) -> dict[str, Any]:
        self._next_id += 1
        flow = feed_event(event, self.body_limit)
        flow["id"] = self._next_id
        flow["pending"] = pending
        flow.pop("prev", None)
        flow.pop("hash", None)
        flow.pop("gateway", None)
        if self.worker is not None:
            flow.setdefault("worker", self.worker)
        self.flows[self._next_id] = flow
        while len(self.flows) > self.keep:
            _, gone = self.flows.popitem(last=False)
            if gone.get("pending"):
                self._pending.pop((event_worker(gone, self.worker), gone.get("seq")), None)
        return flow

    def _finish(self, flow: dict[str, Any], end: dict[str, Any]) -> None:
        cut = feed_event(end, self.body_limit)
        for key in ("status", "duration_ms", "upstream", "response", "changes", "outbox",
                    "error", "reason", "action", "rule", "fault", "changes_not_listed",
                    "minimal"):
            if key in cut:
                flow[key] = cut[key]
        flow["end_seq"] = end.get("seq")
        flow["pending"] = False

    def _count(self, flow: dict[str, Any]) -> None:
        rule = str(flow.get("rule", ""))
        hit = self.hits.get(rule)
        if hit is None:
            hit = self.hits[rule] = [0, ""]
        hit[0] += 1
        hit[1] = flow.get("time", "")
        if rule == DEFAULT_RULE_ID:
            self._unmatched(flow)

    def _unmatched(self, flow: dict[str, Any]) -> None:
        method = str(flow.get("method", ""))[:16]
        host = str(flow.get("host", ""))[:256]
        path = urlsplit(str(flow.get("url", ""))).path[:512] or "/"
        key = (method, host, path)
        group = self.unmatched.get(key)
        if group is None:
            group = self.unmatched[key] = Unmatched(method, host, path,
                                                    first=str(flow.get("time", "")))
            while len(self.unmatched) > MAX_UNMATCHED:
                self.unmatched.popitem(last=False)
        else:
            self.unmatched.move_to_end(key)
        group.count += 1
        group.last = str(flow.get("time", ""))
        sandbox = str(flow.get("sandbox", ""))
        if sandbox not in group.sandboxes and len(group.sandboxes) < MAX_SANDBOXES_SHOWN:
            group.sandboxes.append(sandbox)

    def _changed(self, flow_id: int) -> None:
        self.version += 1
        self._changes.append((self.version, flow_id))
        wake, self._wake = self._wake, None
        if wake is not None:
            if self._loop is not None and threading.get_ident() != self._thread:
                self._loop.call_soon_threadsafe(wake.set)
            else:
                wake.set()

    # read by the console

    def rows(self, filters: Filters, *, before: int | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
        """Summaries of the flows that pass ``filters``, newest first, with ids below
        ``before`` (a page further back)."""
        out: list[dict[str, Any]] = []
        for flow_id in reversed(self.flows):
            if before is not None and flow_id >= before:
                continue
            flow = self.flows[flow_id]
            if filters.admit(flow):
                out.append(summary(flow))
                if len(out) >= limit:
                    break
        return out

    def changed_since(self, version: int) -> list[dict[str, Any]] | None:
        """Summaries of the flows changed after ``version`` (oldest change first), or
        None when that is further back than the changes kept (the console reloads)."""
        if version >= self.version:
            return []
        if not self._changes or self._changes[0][0] > version + 1:
            return None
        seen: set[int] = set()
        out: list[dict[str, Any]] = []
        for v, flow_id in reversed(self._changes):
            if v <= version:
                break
            if flow_id in seen:
                continue
            seen.add(flow_id)
            flow = self.flows.get(flow_id)
            if flow is not None:
                out.append(summary(flow))
        out.reverse()
        return out

    async def wait(self, version: int, timeout: float) -> None:
        """Return once the version is past ``version``, or after ``timeout`` seconds."""
        if self.version > version:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        if self._wake is None:
            self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    def rule_hits(self) -> dict[str, tuple[int, str]]:
        return {rule: (hit[0], hit[1]) for rule, hit in self.hits.items()}


def event_worker(flow: dict[str, Any], own: int | None) -> Any:
    """The worker part of a flow's pending key: None for this process's own events (they
    carry no mark), the writer's index for another worker's."""
    worker = flow.get("worker")
    return None if worker == own else worker


def summary(flow: dict[str, Any]) -> dict[str, Any]:
    """What one row of the flow list needs."""
    out = {k: flow.get(k) for k in SUMMARY_FIELDS}
    out["id"] = flow["id"]
    out["pending"] = flow.get("pending", False)
    changes = flow.get("changes")
    out["changes"] = len(changes) if isinstance(changes, list) else 0
    outbox = flow.get("outbox")
    out["outbox"] = len(outbox) if isinstance(outbox, list) else 0
    return out
