"""The decision engine: ``decide(request) -> Decision``. Pure: no mitmproxy, no I/O.

When rules load, every (rule, host pattern) pair gets a rank: its place in the
documented precedence (README "Precedence": priority, host specificity, path
specificity, number of conditions, load order). The pairs are filed by host pattern
(exact host, ``*.`` suffix, inner-``*`` pattern, ``*``), each bucket holding a
:class:`~guard.engine.routes.RouteTable` (by method, then a trie over path segments).

Per request the engine takes the buckets of the request's host (cached per host),
collects the routes whose method and path match, and tries their rules' remaining
conditions in rank order: the first that holds decides. Nothing matching means the
default rule blocks it. Only rules whose method and path match are ever tried, so a
host with 10,000 rules decides about as fast as one with ten.

:meth:`Engine.explain` takes the slow path on purpose: it walks every rule of the host in
precedence order, so it can say why each rule before the winner did not match.

>>> from guard.rules.loader import load_rules
>>> from guard.request import Request
>>> engine = Engine(load_rules([]))
>>> engine.decide(Request.build("GET", "https://example.org/")).rule_id
'guard.default-deny'
"""

from __future__ import annotations

from types import MappingProxyType

from guard.decision import DEFAULT_DECISION, Action, Decision, Explanation, NearMiss
from guard.engine.routes import Route, RouteTable
from guard.request import Request
from guard.rules.compiled import CompiledRule
from guard.rules.loader import RuleSet, collector_paused
from guard.rules.matchers import HostPattern


class Engine:
    """Compiled once per rule set; :meth:`decide` is safe to call per request."""

    HOST_CACHE_SIZE = 4096

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._exact: dict[str, RouteTable] = {}
        self._wild: dict[str, RouteTable] = {}  # keyed by suffix ".stripe.com"
        self._labels: dict[str, tuple[HostPattern, RouteTable]] = {}  # email.*.amazonaws.com
        self._any: RouteTable | None = None
        self._hosts: dict[str, tuple[RouteTable, ...]] = {}
        self._decisions: dict[CompiledRule, Decision] = {}
        with collector_paused():  # like loading: many objects, no garbage
            self._index(ruleset)

    def _index(self, ruleset: RuleSet) -> None:
        pairs = sorted(
            {(rule.order, host.pattern): (rule.sort_key(host.specificity), rule, host)
             for rule in ruleset.rules for host in rule.hosts}.values(),
            key=lambda t: t[0],
        )
        stride = 1 + max((len(rule.paths) for rule in ruleset.rules), default=0)
        for rank, (_, rule, host) in enumerate(pairs):
            table = self._table_for(host)
            if not rule.paths:
                table.add(Route(rank * stride, rule, None), rule.methods)
            for i, path in enumerate(rule.paths):
                table.add(Route(rank * stride + i, rule, path), rule.methods)

    def _table_for(self, host: HostPattern) -> RouteTable:
        kind = host.kind
        if kind == "any":
            if self._any is None:
                self._any = RouteTable()
            return self._any
        if kind == "labels":
            entry = self._labels.get(host.pattern)
            if entry is None:
                entry = self._labels[host.pattern] = (host, RouteTable())
            return entry[1]
        buckets, key = (self._exact, host.pattern) if kind == "exact" else \
            (self._wild, host.pattern[1:])
        table = buckets.get(key)
        if table is None:
            table = buckets[key] = RouteTable()
        return table

    def _tables(self, host: str) -> tuple[RouteTable, ...]:
        """The route tables whose host pattern matches ``host`` (cached; bounded)."""
        hit = self._hosts.get(host)
        if hit is not None:
            return hit
        tables: list[RouteTable] = []
        exact = self._exact.get(host)
        if exact is not None:
            tables.append(exact)
        dot = host.find(".")
        while dot != -1:
            wild = self._wild.get(host[dot:])
            if wild is not None:
                tables.append(wild)
            dot = host.find(".", dot + 1)
        tables.extend(table for pattern, table in self._labels.values()
                      if pattern.matches(host))
        if self._any is not None:
            tables.append(self._any)
        result = tuple(tables)
        if len(self._hosts) >= self.HOST_CACHE_SIZE:
            del self._hosts[next(iter(self._hosts))]
        self._hosts[host] = result
        return result

    def decide(self, req: Request) -> Decision:
        tables = self._tables(req.host)
        if not tables:
            return DEFAULT_DECISION
        path = req.path
        segments = path.split("/")
        if len(tables) == 1:
            routes = tables[0].lookup(req.method, path, segments)
        else:
            routes = []
            for table in tables:
                table.lookup(req.method, path, segments, routes)
            routes.sort(key=_route_key)
        if len(routes) == 1:
            route = routes[0]
            if _holds(route.rule, req):
                return self._decision(route, path, segments)
            return DEFAULT_DECISION
        tried: set[CompiledRule] = set()
        for route in routes:
            rule = route.rule
            if rule in tried:
                continue  # another of its paths (or hosts) came first
            tried.add(rule)
            if _holds(rule, req):
                return self._decision(route, path, segments)
        return DEFAULT_DECISION

    def _decision(self, route: Route, path: str, segments: list[str]) -> Decision:
        rule: CompiledRule = route.rule
        captures = route.captures(path, segments)
        if captures:
            return Decision(Action(rule.action), rule.id, rule.reason, rule,
                            MappingProxyType(captures))
        decision = self._decisions.get(rule)
        if decision is None:
            decision = self._decisions[rule] = Decision(Action(rule.action), rule.id,
                                                        rule.reason, rule)
        return decision

    def candidates(self, host: str) -> tuple[CompiledRule, ...]:
        """Every rule that applies to ``host``, in precedence order (the slow path)."""
        best: dict[int, tuple[tuple[object, ...], CompiledRule]] = {}
        for rule in self.ruleset.rules:
            for pattern in rule.hosts:
                if pattern.matches(host):
                    key = rule.sort_key(pattern.specificity)
                    old = best.get(id(rule))
                    if old is None or key < old[0]:
                        best[id(rule)] = (key, rule)
        return tuple(rule for _, rule in sorted(best.values(), key=lambda kv: kv[0]))

    def explain(self, req: Request) -> Explanation:
        """The decision plus every rule for this host tried before the winner, and why it
        did not match."""
        decision = self.decide(req)
        misses: list[NearMiss] = []
        candidates = self.candidates(req.host)
        for rule in candidates:
            if rule is decision.rule:
                break
            captures, why = rule.match(req)
            if captures is not None:
                raise RuntimeError(f"engine index disagrees with precedence: {rule.id} "
                                   f"matches {req.method} {req.url} before {decision.rule_id}")
            misses.append(NearMiss(rule.id, why, any_host=not any(
                p.kind != "any" and p.matches(req.host) for p in rule.hosts)))
        return Explanation(decision, tuple(misses), len(candidates))


def _route_key(route: Route) -> int:
    return route.key


def _holds(rule: CompiledRule, req: Request) -> bool:
    """The rule's conditions besides host, method and path (the index checked those)."""
    for check in rule.checks:
        if not check.holds(req):
            return False
    return True
