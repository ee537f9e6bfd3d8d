"""What guard counts for Prometheus (``GET /metrics`` on the admin listener).

Cheap on the request path by construction: a flow costs one dict increment under a key
that already exists (its ``(action, rule)`` pair) and one ``bisect`` per histogram, on
plain ints and lists, with no lock (every observer runs in guard's event loop) and no
object made per request. Everything that is not per request (sandboxes, worlds, objects,
rules, reloads, whether the audit log is writable) is read when Prometheus scrapes,
through the callables :class:`Metrics` is given, and turned into metric families then.

Label values are bounded: ``action`` is one of the four actions (anything else counts
as ``other``), ``rule`` is a rule id of the loaded rule set or one of guard's own; past
:data:`MAX_RULES` distinct ids the rest count as ``other``. There is never a label per
sandbox, per host or per path: those are unbounded and an agent picks them.

In a ``guard run --workers N`` gateway every worker counts, and also writes each count
to its file in a directory all workers share (:mod:`guard.sharedmetrics`); worker 0
answers a scrape with every worker's counters and histograms summed, and the gauges
that differ by worker one series each (label ``worker``).

>>> m = Metrics()
>>> m.observe_event({"kind": "flow", "action": "block", "rule": "r", "duration_ms": 2.0})
>>> m.requests[("block", "r")], m.response["block"].count
(1, 1)
"""

from __future__ import annotations

import bisect
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from guard.errors import NoSuchWorld

if TYPE_CHECKING:
    from guard.sharedmetrics import SharedCounts
    from guard.world.store import WorldStore

log = logging.getLogger("guard")

ACTIONS = ("simulate", "block", "allow", "error")
OTHER = "other"
MAX_RULES = 5000  # distinct rule label values; more count as "other"

# guard's own work per request is micro- to milliseconds; whole flows (allowed ones include
# the upstream round trip) run to seconds; an audit write is a single write(2)
DECISION_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                    0.05, 0.1, 0.25, 1.0)
RESPONSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0)
AUDIT_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                 0.005, 0.01, 0.05, 0.25, 1.0)
SHARE_EVERY = 1.0  # seconds between a worker's writes of its gauges to the shared files

# help texts (one place: a worker's shared files carry them too)
REQUESTS = ("flows guard answered or let through, by action and rule (an allowed flow "
            "counts when it ends)")
DECISION = ("time the pipeline took to decide and answer a request (rules, simulation, "
            "world writes)")
RESPONSE = ("time from a request read to its flow recorded (allowed flows include the "
            "upstream round trip)")
AUDIT_WRITE = "time to append one event to the audit log"
AUDIT_FAILURES = "audit events that could not be written (their requests were refused)"
WEBSOCKET = "WebSocket messages of allowed connections, both ways"
WRITABLE = "1 while the audit log can be written, 0 while guard refuses traffic for it"
RULES = "rules loaded"
RELOADS = "rule reloads: taken, or refused (the last good rules kept)"


class Histogram:
    """A Prometheus histogram on plain numbers: ``observe`` is a bisect and two adds."""

    __slots__ = ("bounds", "buckets", "count", "mirror", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0
        # in a worker: writes (bucket, its count, sum) to the shared files as they change
        self.mirror: Callable[[int, float, float], None] | None = None

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        self.buckets[i] += 1
        self.count += 1
        self.sum += value
        if self.mirror is not None:
            self.mirror(i, self.buckets[i], self.sum)

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip((*map(repr, self.bounds), "+Inf"), self.buckets, strict=True):
            total += n
            out.append((bound, total))
        return out


@dataclass
class Gauges:
    """What is read at scrape time (each a callable; None leaves the metric out)."""

    sandboxes: Callable[[], int] | None = None  # registered through the control plane
    worlds: Callable[[], tuple[int, int]] | None = None  # (worlds, objects in them)
    rules: Callable[[], int] | None = None
    reloads: Callable[[], tuple[int, int]] | None = None  # (taken, refused)
    audit_writable: Callable[[], bool] | None = None
    extra: list[Callable[[], Iterator[Metric]]] = field(default_factory=list)


class Metrics:
    """guard's counters. ``observe_*`` are called on the request path; ``registry`` (a
    private :class:`CollectorRegistry`: nothing global, two guards in one process count
    apart) is what ``/metrics`` exposes."""

    def __init__(self, gauges: Gauges | None = None, *, process: bool = True,
                 shared: SharedCounts | None = None) -> None:
        self.gauges = gauges or Gauges()
        self.started = time.time()
        self.shared = shared
        self._mirrors: dict[tuple[str, str], Callable[[float], None]] = {}
        self.requests: dict[tuple[str, str], int] = {}
        self.decision = {a: Histogram(DECISION_BUCKETS) for a in (*ACTIONS, OTHER)}
        self.response = {a: Histogram(RESPONSE_BUCKETS) for a in (*ACTIONS, OTHER)}
        self.audit_write = Histogram(AUDIT_BUCKETS)
        self.audit_failures = 0
        self.websocket_messages = 0
        self._rules: set[str] = set()
        if shared is not None:
            self._share(shared)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

        # in a gateway each worker writes its own process figures (share_gauges)
        self._process = ProcessCollector(registry=None) if shared is not None else None
        if process:
            PlatformCollector(registry=self.registry)
            if shared is None:
                ProcessCollector(registry=self.registry)
                GCCollector(registry=self.registry)

    # the request path

    def observe_event(self, event: dict[str, Any]) -> None:
        """An audit event as it is written: a ``flow`` event (a whole flow, or the end of an
        allowed one) counts one request and its duration; WebSocket messages are counted."""
        kind = event.get("kind")
        if kind == "flow":
            action = event.get("action")
            if action not in ACTIONS:
                action = OTHER
            rule = event.get("rule")
            key = (action, rule if isinstance(rule, str) else OTHER)
            n = self.requests.get(key)
            if n is None:
                key = (action, self._rule_label(key[1]))
                n = self.requests.get(key, 0)
            self.requests[key] = n + 1
            if self.shared is not None:
                self._mirror(key)(n + 1)
            ms = event.get("duration_ms")
            if isinstance(ms, (int, float)):
                self.response[action].observe(ms / 1000)
        elif kind == "websocket":
            self.websocket_messages += 1
            if self.shared is not None:
                self._mirrors[("", "websocket")](self.websocket_messages)

    def observe_decision(self, action: str, seconds: float) -> None:
        """Time the pipeline took to decide and answer one request (rules, simulation,
        world writes; not the audit write nor the network)."""
        hist = self.decision.get(action)
        (hist if hist is not None else self.decision[OTHER]).observe(seconds)

    def observe_audit_write(self, seconds: float, ok: bool) -> None:
        self.audit_write.observe(seconds)
        if not ok:
            self.audit_failures += 1
            if self.shared is not None:
                self._mirrors[("", "audit_failures")](self.audit_failures)

    def _rule_label(self, rule: Any) -> str:
        text = rule if isinstance(rule, str) and rule else OTHER
        if text in self._rules:
            return text
        if len(self._rules) >= MAX_RULES:
            return OTHER
        self._rules.add(text)
        return text

    # a worker's shared files

    def _share(self, shared: SharedCounts) -> None:
        for name, doc, hists in (("guard_decision_seconds", DECISION, self.decision),
                                 ("guard_response_seconds", RESPONSE, self.response)):
            for action, hist in hists.items():
                if action != OTHER:  # "other" appears when it happens, as it does here
                    hist.mirror = shared.histogram(name, doc, [("action", action)],
                                                   hist.bounds)
                else:
                    hist.mirror = _later(shared, name, doc, action, hist)
        self.audit_write.mirror = shared.histogram("guard_audit_write_seconds", AUDIT_WRITE,
                                                   (), AUDIT_BUCKETS)
        self._mirrors[("", "audit_failures")] = shared.counter(
            "guard_audit_write_failures", AUDIT_FAILURES, ())
        self._mirrors[("", "websocket")] = shared.counter("guard_websocket_messages",
                                                          WEBSOCKET, ())

    def _mirror(self, key: tuple[str, str]) -> Callable[[float], None]:
        write = self._mirrors.get(key)
        if write is None:
            assert self.shared is not None
            write = self._mirrors[key] = self.shared.counter(
                "guard_requests", REQUESTS, [("action", key[0]), ("rule", key[1])])
        return write

    def share_gauges(self) -> None:
        """Write this worker's gauges (and reload counts) to the shared files: every
        :data:`SHARE_EVERY` seconds from a thread, and by worker 0 before it answers."""
        shared, g = self.shared, self.gauges
        if shared is None:
            return
        values: list[tuple[str, str, list[tuple[str, str]], float, bool]] = []
        if g.audit_writable is not None:
            values.append(("guard_audit_writable", WRITABLE, [],
                           1 if g.audit_writable() else 0, False))
        if g.rules is not None:
            values.append(("guard_rules", RULES, [], g.rules(), False))
        if g.reloads is not None:
            taken, refused = g.reloads()
            values += [("guard_reloads", RELOADS, [("result", "ok")], taken, True),
                       ("guard_reloads", RELOADS, [("result", "failed")], refused, True)]
        if self._process is not None:  # CPU seconds add up; memory and fds are per worker
            for family in self._process.collect():
                for sample in family.samples:
                    values.append((family.name if family.type == "counter" else sample.name,
                                   family.documentation, [], sample.value,
                                   family.type == "counter"))
        for name, doc, labels, value, counter in values:
            key = (name, repr(labels))
            write = self._mirrors.get(key)
            if write is None:
                write = self._mirrors[key] = (shared.counter if counter else shared.gauge)(
                    name, doc, labels)
            write(value)

    def share_forever(self) -> threading.Thread:
        """Start the thread that keeps this worker's gauges in the shared files."""
        def loop() -> None:
            while True:
                try:
                    self.share_gauges()
                except Exception as e:  # a gauge that fails now may answer next time
                    log.warning("guard: worker gauges not shared: %s", e)
                time.sleep(SHARE_EVERY)
        thread = threading.Thread(target=loop, name="guard-metrics", daemon=True)
        thread.start()
        return thread

    # reading

    def hits(self) -> dict[str, int]:
        """Requests per rule id, all actions together."""
        out: dict[str, int] = {}
        for (_, rule), n in self.requests.items():
            out[rule] = out.get(rule, 0) + n
        return out

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The body and content type of a scrape (OpenMetrics when the scraper asks)."""
        from prometheus_client import exposition

        encoder, content_type = exposition.choose_encoder(accept)
        return encoder(self.registry), content_type


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m, g = self.m, self.m.gauges
        info = GaugeMetricFamily("guard_info", "guard's version", labels=["version"])
        info.add_metric([_version()], 1)
        yield info
        if m.shared is not None:  # worker 0 of a gateway: every worker's counts
            yield from self._gateway()
        else:
            yield from self._own()
        yield from _read(self._store)
        for more in g.extra:
            yield from _read(more)

    def _own(self) -> Iterator[Metric]:
        m, g = self.m, self.m.gauges
        yield GaugeMetricFamily("guard_start_time_seconds", "when guard started (Unix time)",
                                value=m.started)
        requests = CounterMetricFamily("guard_requests", REQUESTS, labels=["action", "rule"])
        for (action, rule), n in sorted(m.requests.items()):
            requests.add_metric([action, rule], n)
        yield requests
        yield _histograms("guard_decision_seconds", DECISION, m.decision)
        yield _histograms("guard_response_seconds", RESPONSE, m.response)
        yield _histogram("guard_audit_write_seconds", AUDIT_WRITE, m.audit_write)
        yield CounterMetricFamily("guard_audit_write_failures", AUDIT_FAILURES,
                                  value=m.audit_failures)
        yield CounterMetricFamily("guard_websocket_messages", WEBSOCKET,
                                  value=m.websocket_messages)
        if g.audit_writable is not None:
            yield GaugeMetricFamily("guard_audit_writable", WRITABLE,
                                    value=1 if g.audit_writable() else 0)
        if g.rules is not None:
            yield GaugeMetricFamily("guard_rules", RULES, value=g.rules())
        if g.reloads is not None:
            taken, refused = g.reloads()
            reloads = CounterMetricFamily("guard_reloads", RELOADS, labels=["result"])
            reloads.add_metric(["ok"], taken)
            reloads.add_metric(["failed"], refused)
            yield reloads

    def _gateway(self) -> Iterator[Metric]:
        from guard import sharedmetrics

        m = self.m
        assert m.shared is not None
        directory = m.shared.directory
        yield GaugeMetricFamily("guard_start_time_seconds", "when the gateway started (Unix "
                                "time): its counters count from then",
                                value=sharedmetrics.started(directory) or m.started)
        try:
            m.share_gauges()  # this worker's own, as of now
        except Exception as e:
            log.warning("guard: worker gauges not shared: %s", e)
        yield from _read(lambda: iter(sharedmetrics.collect(directory)))

    def _store(self) -> Iterator[Metric]:
        """The world store's figures: the same whichever worker or replica reads them."""
        g = self.m.gauges
        if g.sandboxes is not None:
            yield GaugeMetricFamily("guard_sandboxes", "sandboxes registered through the "
                                    "control plane", value=g.sandboxes())
        if g.worlds is not None:  # last: with Redis away it is what fails
            worlds, objects = g.worlds()
            yield GaugeMetricFamily("guard_worlds", "sandbox worlds in the world store",
                                    value=worlds)
            yield GaugeMetricFamily("guard_world_objects", "objects in all worlds together",
                                    value=objects)


def _read(source: Callable[[], Iterator[Metric]]) -> Iterator[Metric]:
    """The metrics of a scrape-time source; one that fails (Redis away) is left out of
    this scrape instead of failing all of it."""
    try:
        got = list(source())
    except Exception as e:
        log.warning("guard: metrics left out of a scrape: %s", e)
        got = []
    yield from got


def world_totals(store: WorldStore, *, every: float = 10.0,
                 limit: int = 10_000) -> Callable[[], tuple[int, int]]:
    """(worlds, objects) of ``store``, counted at most every ``every`` seconds (with Redis
    each world is one round trip) and over the first ``limit`` worlds only."""
    last: list[Any] = [float("-inf"), (0, 0)]

    def totals() -> tuple[int, int]:
        now = time.monotonic()
        if now - last[0] >= every:
            names = store.sandboxes()
            objects = 0
            for name in names[:limit]:
                try:
                    objects += store.info(name).objects
                except NoSuchWorld:
                    continue  # deleted meanwhile
            last[:] = [now, (len(names), objects)]
        result: tuple[int, int] = last[1]
        return result
    return totals


def _later(shared: SharedCounts, name: str, doc: str, action: str,
           hist: Histogram) -> Callable[[int, float, float], None]:
    """A histogram's mirror that makes its series in the shared files when first used."""
    def first(index: int, count: float, sum_: float) -> None:
        hist.mirror = shared.histogram(name, doc, [("action", action)], hist.bounds,
                                       buckets=hist.buckets, sum_=hist.sum)
    return first


def _histogram(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], hist.cumulative(), hist.sum)
    return family


def _histograms(name: str, doc: str, by_action: dict[str, Histogram]
                ) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["action"])
    for action, hist in by_action.items():
        if hist.count or action != OTHER:
            family.add_metric([action], hist.cumulative(), hist.sum)
    return family


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("guard")
    except PackageNotFoundError:
        return "unknown"
