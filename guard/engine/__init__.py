"""The decision engine: ``decide(request) -> Decision``. Pure: no mitmproxy, no I/O.

Rules are indexed by host when they load. Per request the engine looks up the
candidate list for the host (exact hosts, matching wildcards and ``*`` rules,
already sorted by precedence and cached per host), and the first rule whose
conditions hold decides. Nothing matching means the default rule blocks it.

>>> from guard.rules import load_rules
>>> from guard.request import Request
>>> engine = Engine(load_rules([]))
>>> engine.decide(Request.build("GET", "https://example.org/")).rule_id
'guard.default-deny'
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType

from guard.decision import DEFAULT_DECISION, Action, Decision, Explanation, NearMiss
from guard.request import Request
from guard.rules.compiled import CompiledRule
from guard.rules.loader import RuleSet
from guard.rules.matchers import HostPattern

_EMPTY: Mapping[str, str] = MappingProxyType({})


class Engine:
    """Compiled once per rule set; :meth:`decide` is safe to call per request."""

    CACHE_SIZE = 4096

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._exact: dict[str, list[CompiledRule]] = {}
        self._wild: dict[str, list[CompiledRule]] = {}  # keyed by suffix ".stripe.com"
        self._any: list[CompiledRule] = []
        self._labels: list[tuple[HostPattern, CompiledRule]] = []  # email.*.amazonaws.com
        for rule in ruleset.rules:
            for host in rule.hosts:
                if host.kind == "exact":
                    self._exact.setdefault(host.pattern, []).append(rule)
                elif host.kind == "wildcard":
                    self._wild.setdefault(host.pattern[1:], []).append(rule)
                elif host.kind == "labels":
                    self._labels.append((host, rule))
                else:
                    self._any.append(rule)
        self._cache: OrderedDict[str, tuple[CompiledRule, ...]] = OrderedDict()

    def candidates(self, host: str) -> tuple[CompiledRule, ...]:
        """Rules that apply to ``host``, best first (cached; bounded)."""
        hit = self._cache.get(host)
        if hit is not None:
            return hit
        scored: dict[int, tuple[tuple[object, ...], CompiledRule]] = {}

        def offer(rule: CompiledRule, specificity: int) -> None:
            key = rule.sort_key(specificity)
            old = scored.get(id(rule))
            if old is None or key < old[0]:
                scored[id(rule)] = (key, rule)

        for rule in self._exact.get(host, ()):
            offer(rule, 10_000)
        dot = host.find(".")
        while dot != -1:
            suffix = host[dot:]
            for rule in self._wild.get(suffix, ()):
                offer(rule, len(suffix) + 1)
            dot = host.find(".", dot + 1)
        for pattern, rule in self._labels:
            if pattern.matches(host):
                offer(rule, pattern.specificity)
        for rule in self._any:
            offer(rule, 0)
        result = tuple(rule for _, rule in sorted(scored.values(), key=lambda kv: kv[0]))
        self._cache[host] = result
        if len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def decide(self, req: Request) -> Decision:
        for rule in self.candidates(req.host):
            captures, _ = rule.match(req)
            if captures is not None:
                return _decision(rule, captures)
        return DEFAULT_DECISION

    def explain(self, req: Request) -> Explanation:
        """The decision plus every rule for this host that did not match, and why."""
        misses: list[NearMiss] = []
        candidates = self.candidates(req.host)
        decision = DEFAULT_DECISION
        for rule in candidates:
            captures, why = rule.match(req)
            if captures is not None:
                decision = _decision(rule, captures)
                break
            misses.append(NearMiss(rule.id, why))
        return Explanation(decision, tuple(misses), len(candidates))


def _decision(rule: CompiledRule, captures: dict[str, str]) -> Decision:
    return Decision(
        Action(rule.action), rule.id, rule.reason, rule,
        MappingProxyType(captures) if captures else _EMPTY,
    )
