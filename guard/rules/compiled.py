"""A rule compiled for matching: predicates built once, evaluated per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from guard.request import Request, dig
from guard.rules.matchers import HostPattern, PathTemplate, Predicate, compile_value
from guard.rules.model import Match, Rule
from guard.secret_patterns import is_secret_header


@dataclass(frozen=True)
class Source:
    """Where a rule was written."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Check:
    """One condition besides host, method and path: (what, key, predicate, description)."""

    where: str  # query | headers | form | json | body | credential
    key: str
    test: Predicate
    describe: str
    holds: Callable[[Request], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # bound once: the engine calls holds() for every candidate rule of every request
        object.__setattr__(self, "holds", _holder(self.where, self.key, self.test))

    def explain(self, req: Request) -> str:
        if self.where == "credential":
            # never echo a credential, not even in explain output
            if not req.credentials:
                return f"no credential sent, wanted one that matches {self.describe}"
            return f"the credential sent does not match {self.describe}"
        present, value = _lookup(req, self.where, self.key)
        label = f"{self.where} {self.key}" if self.key else self.where
        shown = "absent" if not present else repr(_short(value))
        if present and self.where == "headers" and is_secret_header(self.key):
            shown = "present (value hidden)"
        return f"{label} is {shown}, wanted {self.describe}"


def _holder(where: str, key: str, test: Predicate) -> Callable[[Request], bool]:
    if where == "credential":
        def credential(req: Request) -> bool:
            found = req.credentials
            if not found:
                return test(False, None)
            return any(test(True, c) for c in found)
        return credential
    if where == "headers":
        def header(req: Request) -> bool:
            value = req.header_map.get(key)
            return test(value is not None, value)
        return header

    def other(req: Request) -> bool:
        return test(*_lookup(req, where, key))
    return other


@dataclass(eq=False)
class CompiledRule:
    """A validated rule ready to match. ``order`` is its load position (the last tie-break)."""

    rule: Rule
    pack: str
    source: Source
    order: int
    hosts: tuple[HostPattern, ...]
    methods: frozenset[str] | None
    paths: tuple[PathTemplate, ...]
    checks: tuple[Check, ...]
    # (header, compiled pattern): the pack's world_by_header, for the simulator
    partition: tuple[str, Any] | None = None
    # the failures to inject (guard.faults.Faults) and the error shape they answer in
    faults: Any = None
    error_shape: str = "rfc9457"

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def action(self) -> str:
        return self.rule.action

    @property
    def reason(self) -> str:
        return self.rule.reason or self.rule.description or ""

    def sort_key(self, host_specificity: int) -> tuple[Any, ...]:
        """Precedence, best first: priority, host specificity, path specificity,
        number of conditions, load order. See README 'Precedence'."""
        path_spec = max((p.specificity for p in self.paths), default=(-1, -1))
        conditions = (self.methods is not None) + len(self.checks)
        return (-self.rule.priority, -host_specificity, (-path_spec[0], -path_spec[1]),
                -conditions, self.order)

    def match(self, req: Request) -> tuple[dict[str, str] | None, str]:
        """Match everything but the host. Returns (captures, "") or (None, why not)."""
        if self.methods is not None and req.method not in self.methods:
            return None, f"method is {req.method}, wanted {'/'.join(sorted(self.methods))}"
        captures: dict[str, str] = {}
        if self.paths:
            for p in self.paths:
                got = p.match(req.path)
                if got is not None:
                    captures = got
                    break
            else:
                wanted = " or ".join(p.template for p in self.paths)
                return None, f"path is {req.path}, wanted {wanted}"
        for check in self.checks:
            if not check.holds(req):
                return None, check.explain(req)
        return captures, ""


def compile_match(match: Match) -> tuple[frozenset[str] | None, tuple[PathTemplate, ...],
                                         tuple[Check, ...]]:
    """Compile a rule's ``match`` section. Raises ``ValueError`` for a bad path template."""
    methods: frozenset[str] | None = None
    if match.method is not None:
        listed = [match.method] if isinstance(match.method, str) else match.method
        if "*" not in listed:
            methods = _methods(tuple(listed))
    paths: tuple[PathTemplate, ...] = ()
    if match.path is not None:
        listed_paths = [match.path] if isinstance(match.path, str) else match.path
        paths = tuple(PathTemplate(p) for p in listed_paths)
    checks: list[Check] = []
    for where, table in (("query", match.query), ("headers", match.headers),
                         ("form", match.form), ("json", match.json_)):
        for key, spec in table.items():
            test, describe = compile_value(spec)
            checks.append(Check(where, key.lower() if where == "headers" else key, test, describe))
    if match.body is not None:
        test, describe = compile_value(match.body)
        checks.append(Check("body", "", test, describe))
    if match.credential is not None:
        test, describe = compile_value(match.credential)
        checks.append(Check("credential", "", test, describe))
    return methods, paths, tuple(checks)


@lru_cache(maxsize=256)
def _methods(listed: tuple[str, ...]) -> frozenset[str]:
    """One frozenset per method list, however many rules share it."""
    return frozenset(listed)


def _lookup(req: Request, where: str, key: str) -> tuple[bool, Any]:
    if where == "headers":
        value = req.header(key)
        return value is not None, value
    if where == "query":
        value = req.query_first(key)
        if value is not None:
            return True, value
        return dig(req.query_map, key)
    if where == "form":
        return dig(req.form, key)
    if where == "json":
        return dig(req.json, key) if req.json is not None else (False, None)
    return bool(req.body), req.text


def _short(value: Any) -> Any:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
