"""Every worker's counters in one directory, so the ``/metrics`` of a ``guard run --workers
N`` gateway (served by worker 0) describes the whole gateway.

The files are prometheus-client's multiprocess files (what ``PROMETHEUS_MULTIPROC_DIR``
holds for gunicorn): one memory-mapped file of values per kind and writer, merged when
Prometheus scrapes by prometheus-client's own :class:`MultiProcessCollector` code. guard
writes them itself, through the same :class:`MmapedDict`, because its counting stays on
plain ints (:mod:`guard.metrics`): each increment is *also* written to the worker's file
(a ``struct`` pack into shared memory under an uncontended lock), so a scrape sees every
flow counted up to that moment, in every worker, with no publishing interval.

- Counters and histograms: one file per worker *process* (``counter_W.PID.db``,
  ``histogram_W.PID.db``), summed over every file. A worker that dies leaves its file, so
  the gateway's totals never go back; the worker started in its place counts from zero
  in a new file. The supervisor makes a new directory each time it starts (and removes
  it when it stops), so counters start at the gateway's start.
- Gauges that differ by worker (is its audit log writable, how many rules has it
  loaded): one file per worker *index* (``gauge_liveall_W.db``), shown with a ``worker``
  label. The supervisor removes a dead worker's file, so its series disappear until the
  worker started again writes them.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> a, b = SharedCounts(d, 0, pid=1), SharedCounts(d, 1, pid=2)
>>> a.counter("guard_x", "x", ())(3); b.counter("guard_x", "x", ())(4)
>>> [s.value for m in collect(d) for s in m.samples if s.name == "guard_x_total"]
[7.0]
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

STARTED = "started"  # the gateway's start (Unix time), written by the supervisor
Labels = Sequence[tuple[str, str]]


class SharedCounts:
    """This worker's files in ``directory``. Writers are made once per series and called
    with the series' new value; they may be called from any thread."""

    def __init__(self, directory: Path, worker: int, *, pid: int | None = None) -> None:
        self.directory = directory
        self.worker = worker
        tag = f"{worker}.{pid if pid is not None else os.getpid()}"
        self._lock = threading.Lock()
        self._counters = _mmap(directory / f"counter_{tag}.db")
        self._histograms = _mmap(directory / f"histogram_{tag}.db")
        self._gauges = _mmap(directory / f"gauge_liveall_{worker}.db")

    def counter(self, name: str, doc: str, labels: Labels) -> Callable[[float], None]:
        names, values = [k for k, _ in labels], [v for _, v in labels]
        key = mmap_key(name, name + "_total", names, values, doc)
        return self._writer(self._counters, key)

    def gauge(self, name: str, doc: str, labels: Labels = ()) -> Callable[[float], None]:
        names, values = [k for k, _ in labels], [v for _, v in labels]
        return self._writer(self._gauges, mmap_key(name, name, names, values, doc))

    def histogram(self, name: str, doc: str, labels: Labels, bounds: Sequence[float], *,
                  buckets: Sequence[float] = (), sum_: float = 0.0
                  ) -> Callable[[int, float, float], None]:
        """A writer ``(bucket index, that bucket's count, the sum)``. Every bucket is
        written now (``buckets``, the counts so far, or 0), so the series exist before
        the first observation."""
        names, values = [k for k, _ in labels], [v for _, v in labels]
        keys = [mmap_key(name, name + "_bucket", [*names, "le"], [*values, le], doc)
                for le in (*map(floatToGoString, bounds), "+Inf")]
        total = mmap_key(name, name + "_sum", names, values, doc)
        file, lock = self._histograms, self._lock
        with lock:
            for i, key in enumerate(keys):
                file.write_value(key, float(buckets[i]) if i < len(buckets) else 0.0, 0.0)
            file.write_value(total, sum_, 0.0)

        def write(index: int, count: float, sum_: float) -> None:
            with lock:
                file.write_value(keys[index], count, 0.0)
                file.write_value(total, sum_, 0.0)
        return write

    def _writer(self, file: Any, key: str) -> Callable[[float], None]:
        lock = self._lock

        def write(value: float) -> None:
            with lock:
                file.write_value(key, value, 0.0)
        write(0.0)
        return write


def gauges(directory: Path, name: str) -> dict[str, float]:
    """One gauge of every live worker, by worker index (readiness reads these)."""
    files = glob.glob(os.path.join(glob.escape(str(directory)), "gauge_*.db"))
    merged = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
    return {str(s.labels.get("pid")): float(s.value) for m in merged if m.name == name
            for s in m.samples}


def _mmap(path: Path) -> Any:
    """prometheus-client's memory-mapped dict of doubles (untyped there)."""
    return MmapedDict(str(path))  # type: ignore[no-untyped-call]


def collect(directory: Path) -> list[Metric]:
    """Every worker's series merged: counters and histograms summed over the files,
    gauges one series per worker (label ``worker``)."""
    files = glob.glob(os.path.join(glob.escape(str(directory)), "*.db"))
    merged: list[Metric] = list(
        MultiProcessCollector.merge(files, accumulate=True))  # type: ignore[no-untyped-call]
    for metric in merged:
        if metric.type == "gauge":  # the file's name is the worker: call it that
            metric.samples = [s._replace(labels={("worker" if k == "pid" else k): v
                                                 for k, v in s.labels.items()})
                              for s in metric.samples]
        metric.samples.sort(key=_order)
    return sorted(merged, key=lambda m: m.name)


SUFFIXES = {"_bucket": 0, "_count": 1, "_sum": 2}


def _order(sample: Any) -> tuple[Any, ...]:
    """One label set's samples together; a histogram's buckets by ``le``, then its count
    and sum (what OpenMetrics wants)."""
    labels = sorted((k, v) for k, v in sample.labels.items() if k != "le")
    suffix = next((n for s, n in SUFFIXES.items() if sample.name.endswith(s)), 3)
    return (labels, suffix, float(sample.labels.get("le", "0")), sample.name)


def started(directory: Path) -> float | None:
    """When the gateway (its supervisor) started, as it wrote it."""
    try:
        return float((directory / STARTED).read_text())
    except (OSError, ValueError):
        return None


def prepare(directory: Path) -> None:
    """A new gateway: its directory holds only its start time."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in directory.glob("*.db"):
        old.unlink()
    (directory / STARTED).write_text(repr(time.time()))


def forget(directory: Path, worker: int) -> None:
    """Worker ``worker`` is gone: its gauges go (its counters stay in the totals)."""
    for path in directory.glob(f"gauge_live*_{worker}.db"):
        path.unlink(missing_ok=True)
