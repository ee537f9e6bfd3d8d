"""The indexed engine decides exactly as a plain linear reading of the README's precedence.

Hypothesis generates random rule sets (hosts of every kind, methods, path templates with
literals, captures, ``{n:int}``, mixed segments, ``{rest:path}`` and ``/**``, several
paths per rule, priorities, conditions) and random requests (odd paths included), and
compares :meth:`Engine.decide` with :func:`reference`, which tries every rule in the
documented order and shares nothing with the index but the rules' own conditions.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.decision import DEFAULT_RULE_ID
from guard.engine import Engine
from guard.request import Request
from guard.rules.compiled import CompiledRule
from guard.rules.loader import load_rules

HOSTS = ["a.test", "b.a.test", "c.b.a.test", "*.a.test", "*.b.a.test", "b.*.test",
         "c.*.a.test", "*"]
REQUEST_HOSTS = ["a.test", "b.a.test", "c.b.a.test", "d.a.test", "b.x.test", "c.q.a.test",
                 "other.test"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
SEGMENTS = ["a", "b", "", "{x}", "{n:int}", "{x}.json", "v{n:int}", "{p:path}", "a{p:path}",
            "{x}-{y}"]
REQUEST_SEGMENTS = ["a", "b", "", "12", "x.json", "v3", "ab", "a.json", "1-2", "-", "é", "a\n"]


@st.composite
def templates(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4))
    seen: dict[str, int] = {}

    def rename(m: re.Match[str]) -> str:  # capture names are unique within a template
        seen[m.group(1)] = seen.get(m.group(1), 0) + 1
        return "{" + m.group(1) + str(seen[m.group(1)]) + (m.group(2) or "") + "}"

    text = re.sub(r"\{(\w+)(:\w+)?\}", rename, "/" + "/".join(parts))
    return text + "/**" if draw(st.booleans()) and draw(st.booleans()) else text


CONDITIONS = st.sampled_from([
    {}, {"headers": {"x-k": "1"}}, {"headers": {"x-k": {"present": False}}},
    {"query": {"q": {"prefix": "s"}}}, {"credential": {"prefix": "sk_live_"}},
    {"headers": {"x-k": ["1", "2"]}, "query": {"q": "s1"}},
])


@st.composite
def rule_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    rules = []
    for i in range(draw(st.integers(1, 20))):
        match: dict[str, Any] = dict(draw(CONDITIONS))
        method = draw(st.sampled_from([None, "GET", "POST", ["GET", "PUT"], "*", ["*", "GET"]]))
        if method is not None:
            match["method"] = method
        paths = draw(st.lists(templates(), min_size=0, max_size=3))
        if paths:
            match["path"] = paths if len(paths) > 1 or draw(st.booleans()) else paths[0]
        action = draw(st.sampled_from(["block", "allow", "simulate"]))
        rule: dict[str, Any] = {
            "id": f"p.r{i}", "hosts": draw(st.lists(st.sampled_from(HOSTS), min_size=1,
                                                    max_size=2, unique=True)),
            "priority": draw(st.sampled_from([0, 0, 0, 1, -1])),
            "match": match, "action": action,
        }
        if action == "simulate":
            rule["respond"] = {"body": {"ok": True}}
        rules.append(rule)
    return rules


@st.composite
def requests(draw: st.DrawFn) -> Request:
    parts = draw(st.lists(st.sampled_from(REQUEST_SEGMENTS), min_size=0, max_size=5))
    path = "/" + "/".join(parts)
    if draw(st.integers(0, 9)) == 0:
        path = path[1:]  # a path without its leading slash ("" or "a/b") never matches a /x rule
    headers: list[tuple[str, str]] = []
    if draw(st.booleans()):
        headers.append(("x-k", draw(st.sampled_from(["1", "2", "3"]))))
    if draw(st.booleans()):
        headers.append(("authorization", draw(st.sampled_from(["Bearer sk_live_1",
                                                                "Bearer sk_test_1"]))))
    query = (("q", draw(st.sampled_from(["s1", "s2", "t"]))),) if draw(st.booleans()) else ()
    return Request(draw(st.sampled_from(METHODS)), "https", draw(st.sampled_from(REQUEST_HOSTS)),
                   443, path, query=query, headers=tuple(headers))


# --- the reference: every rule, in the order the README gives, first match wins ---------

def host_specificity(pattern: str, host: str) -> int | None:
    """README: exact, then inner-* patterns, then longer *. wildcards, then *."""
    if pattern == "*":
        return 0
    if "*" in pattern.removeprefix("*."):
        labels, want = host.split("."), pattern.split(".")
        if want[0] == "*" and pattern.startswith("*."):  # leading *. : one or more labels
            tail = want[1:]
            ok = len(labels) > len(tail) and all(
                w in ("*", h) for w, h in zip(tail, labels[-len(tail):], strict=True))
        else:
            ok = len(labels) == len(want) and all(
                w in ("*", h) for w, h in zip(want, labels, strict=True))
        return 5_000 + len(pattern.replace("*", "")) if ok and all(labels) else None
    if pattern.startswith("*."):
        return len(pattern) if host.endswith(pattern[1:]) else None
    return 10_000 if host == pattern else None


def template_regex(template: str) -> re.Pattern[str]:
    body, tail = (template[:-3], "(?:/.*)?") if template.endswith("/**") else (template, "")
    kinds = {"str": "[^/]+", "int": "[0-9]+", "path": ".*"}
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)(?::(\w+))?\}", body):
        out += re.escape(body[pos:m.start()]) + f"(?P<{m.group(1)}>{kinds[m.group(2) or 'str']})"
        pos = m.end()
    return re.compile(out + re.escape(body[pos:]) + tail, re.DOTALL)  # any rest is any rest


def path_specificity(template: str) -> tuple[int, int]:
    """README: an exact path before a template, then more literal characters."""
    exact = "{" not in template and not template.endswith("/**")
    body = template[:-3] if template.endswith("/**") else template
    return (1 if exact else 0, len(re.sub(r"\{[^}]*\}", "", body)))


def reference(rules: list[CompiledRule], req: Request) -> tuple[str, dict[str, str]]:
    ordered = []
    for rule in rules:
        specs = [s for h in rule.hosts if (s := host_specificity(h.pattern, req.host)) is not None]
        if not specs:
            continue
        model = rule.rule.match
        templates_ = [model.path] if isinstance(model.path, str) else model.path or []
        methods = [model.method] if isinstance(model.method, str) else model.method
        path_spec = max((path_specificity(t) for t in templates_), default=(-1, -1))
        conditions = (methods is not None and "*" not in methods) + sum(
            len(t) for t in (model.query, model.headers, model.form, model.json_)) + (
            model.body is not None) + (model.credential is not None)
        ordered.append(((-rule.rule.priority, -max(specs), (-path_spec[0], -path_spec[1]),
                         -conditions, rule.order), rule, templates_, methods))
    for _, rule, templates_, methods in sorted(ordered, key=lambda t: t[0]):
        if methods is not None and "*" not in methods and req.method not in methods:
            continue
        captures: dict[str, str] | None = {} if not templates_ else None
        for t in templates_:
            m = template_regex(t).fullmatch(req.path)
            if m is not None:
                captures = m.groupdict()
                break
        if captures is not None and all(c.holds(req) for c in rule.checks):
            return rule.id, captures
    return DEFAULT_RULE_ID, {}


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rule_sets(), st.lists(requests(), min_size=1, max_size=15))
def test_the_index_decides_as_the_documented_precedence(rules, reqs):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(json.dumps({"pack": "p", "rules": rules}))  # JSON is YAML
        engine = Engine(load_rules([path], builtin=False))
    for req in reqs:
        decision = engine.decide(req)
        assert (decision.rule_id, dict(decision.captures)) == reference(engine.ruleset.rules,
                                                                        req), req
        # explain walks every rule linearly; it agrees and names only rules ranked higher
        explained = engine.explain(req)
        assert explained.decision == decision
