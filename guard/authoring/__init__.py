"""Rule authoring: run rule test cases (``guard test``), measure what they and a recorded
audit log cover (``--coverage``, ``guard coverage``).

Cases run through the pure :class:`~guard.engine.Engine` and
:class:`~guard.synth.simulator.Simulator`, never through a proxy or the network.

>>> from guard.authoring import collect, run_suite
>>> suite = collect([])                       # the built-in packs and their cases
>>> results = run_suite(suite)
>>> all(r.passed for r in results)
True
"""

from guard.authoring.cases import CaseGroup, LocatedCase, Suite, collect
from guard.authoring.runner import CaseResult, Outcome, run_suite

__all__ = ["CaseGroup", "CaseResult", "LocatedCase", "Outcome", "Suite", "collect", "run_suite"]
