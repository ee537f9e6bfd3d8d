"""What counting one flow costs guard's request path, alone and in a ``--workers`` gateway.

A flow is what the proxy reports per simulated request: one decision, one audit write,
one ``flow`` event (:mod:`guard.metrics`). In a gateway each of those also writes its new
values to the worker's shared files (:mod:`guard.sharedmetrics`).

    python bench/metrics.py [--flows 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import timeit
from pathlib import Path

from guard import sharedmetrics
from guard.metrics import Metrics
from guard.sharedmetrics import SharedCounts

EVENT = {"kind": "flow", "action": "simulate", "rule": "stripe.customers.create",
         "duration_ms": 3.2}


def per_flow(m: Metrics, flows: int) -> float:
    def flow() -> None:
        m.observe_decision("simulate", 0.0004)
        m.observe_audit_write(0.00003, True)
        m.observe_event(EVENT)
    return min(timeit.repeat(flow, number=flows, repeat=5)) / flows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flows", type=int, default=200_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        sharedmetrics.prepare(Path(d))
        alone = per_flow(Metrics(process=False), args.flows)
        shared = per_flow(Metrics(process=False, shared=SharedCounts(Path(d), 0)), args.flows)
    print(f"one process:        {alone * 1e6:6.2f} us per flow")
    print(f"worker of a gateway: {shared * 1e6:6.2f} us per flow "
          f"(+{(shared - alone) * 1e6:.2f} us for the shared files)")


if __name__ == "__main__":
    main()
