"""The responses of a rule set, compiled once at load: for every simulate rule, its
:class:`~guard.synth.respond.CompiledRespond`.

The rule loader (:mod:`guard.rules.loader`) makes matchers only; this module makes what
a matched ``simulate`` rule answers with, from the same parsed packs. The two travel
together as :class:`guard.packs.Packs`, which a hot reload swaps whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import ValidationError

from guard.errors import Problem
from guard.rules.compiled import CompiledRule
from guard.rules.loader import LoadedPack, RuleSet
from guard.rules.model import Respond
from guard.synth.handlers import Registry
from guard.synth.respond import CompiledRespond, RespondCompiler, RespondErrors


class Responders(Mapping[CompiledRule, CompiledRespond]):
    """Compiled responses by the rule they answer for (the rule object itself, so a rule
    of another rule set never finds one here: a mismatch fails closed).

    ``templates`` lists every template path compiling looked at, found or not (hot
    reload watches them).
    """

    def __init__(self, by_rule: Mapping[CompiledRule, CompiledRespond] | None = None,
                 templates: tuple[str, ...] = ()) -> None:
        self._by_rule = dict(by_rule or {})
        self.templates = templates

    def __getitem__(self, rule: CompiledRule) -> CompiledRespond:
        return self._by_rule[rule]

    def __iter__(self) -> Iterator[CompiledRule]:
        return iter(self._by_rule)

    def __len__(self) -> int:
        return len(self._by_rule)

    def merge(self, other: Responders) -> Responders:
        """Both sets' responses (rules are distinct objects, so nothing collides)."""
        return Responders({**self._by_rule, **other._by_rule},
                          tuple(sorted({*self.templates, *other.templates})))


def compile_responders(ruleset: RuleSet, *, templates: Mapping[str, Path],
                       handlers: Registry) -> tuple[Responders, list[Problem]]:
    """Compile the ``respond`` section of every rule in ``ruleset``. Returns the
    responders and the problems, each at ``path:line:column`` of the field at fault
    (a template not found or not compiling, an unknown handler)."""
    compiler = RespondCompiler(templates, handlers)
    by_parsed = {id(rule.rule): rule for rule in ruleset.rules}
    out: dict[CompiledRule, CompiledRespond] = {}
    problems: list[Problem] = []
    for lp in ruleset.packs:
        base_dir = Path(lp.path).parent

        def report(i: int, e: ValueError, lp: LoadedPack = lp) -> None:
            for where, message in e.problems if isinstance(e, RespondErrors) else [
                    e.args if len(e.args) == 2 else ("respond", str(e))]:
                problems.append(lp.located.problem(("rules", i, "respond", *where.split(".")),
                                                   message))

        for i, parsed in zip(lp.positions, lp.pack.rules, strict=True):
            rule = by_parsed.get(id(parsed))
            if rule is None or parsed.respond is None:
                continue  # not compiled as a rule (a problem already said why), or no answer
            try:
                out[rule] = compiler.compile(parsed.respond, base_dir, parsed.id)
            except ValueError as e:
                report(i, e)
        for i, respond in _invalid_rules_responds(lp):
            try:  # only to report its problems too (a missing template, ...)
                compiler.compile(respond, base_dir, "")
            except ValueError as e:
                report(i, e)
        if lp.openapi is not None:
            _openapi(lp, ruleset, out)
    return Responders(out, tuple(sorted(str(p) for p in compiler.consulted))), problems


def _invalid_rules_responds(lp: LoadedPack) -> Iterator[tuple[int, Respond]]:
    """The valid ``respond`` sections of the rules that failed validation, with their
    index: ``guard check`` reports their problems in the same run."""
    raw = lp.located.data.get("rules") if isinstance(lp.located.data, dict) else None
    if not isinstance(raw, list):
        return
    valid = set(lp.positions)
    for i, item in enumerate(raw):
        if i in valid or not isinstance(item, dict) or not isinstance(item.get("respond"),
                                                                      dict):
            continue
        try:
            yield i, Respond.model_validate(item["respond"])
        except ValidationError:
            continue  # its field errors were reported with the rule's


def _openapi(lp: LoadedPack, ruleset: RuleSet, out: dict[CompiledRule, CompiledRespond]) -> None:
    """The responses of a pack with an OpenAPI description: generated for the rules made
    from it, validation in front of the pack's own handlers for its operations."""
    from guard.openapi.pack import responder

    written = {parsed.id for parsed in lp.pack.rules}
    base_dir = Path(lp.path).parent
    for rule in ruleset.rules:
        op = lp.operations.get(rule.id) if rule.pack == lp.pack.pack else None
        if op is None or (rule.id in written and rule not in out):
            continue  # not an operation's rule, or a hand-written one without a response
        answer = responder(lp.openapi, op, rule, out.get(rule), lp.wrap, base_dir)
        if answer is not None:
            out[rule] = answer
