"""Loaded packs: the rules (matchers, and the engine over them) and what their simulate
rules answer (responders), loaded together and used together.

A running guard holds one :class:`Packs` and reads it once per request; a hot reload
builds a whole new one and swaps it in one assignment, so a request never decides with
one rule set and answers with another.

>>> packs = load_packs([], builtin=False)
>>> len(packs.ruleset.rules), len(packs.responders)
(0, 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from guard import providers
from guard.engine import Engine
from guard.errors import RuleError
from guard.resources import builtin_templates
from guard.rules.loader import RuleSet, read_rules
from guard.synth.responders import Responders, compile_responders


@dataclass(frozen=True)
class Packs:
    """One loaded rule set: ``engine`` decides, ``responders`` answer its simulate rules."""

    ruleset: RuleSet
    engine: Engine
    responders: Responders

    @classmethod
    def of(cls, ruleset: RuleSet, responders: Responders) -> Packs:
        return cls(ruleset, Engine(ruleset), responders)

    @property
    def templates(self) -> tuple[str, ...]:
        """Every template path the responses looked at (hot reload watches them)."""
        return self.responders.templates


def load_packs(paths: Sequence[str | Path], *, builtin: bool = True,
               consulted: set[str] | None = None) -> Packs:
    """Load the built-in packs (unless ``builtin=False``) and then ``paths``: the rules and
    their responses, with the built-in providers' templates and handlers.

    Raises :class:`RuleError` listing every problem of both. ``consulted``, when given,
    receives every template path looked at, even when loading fails (hot reload watches
    them, so creating a missing template is noticed).
    """
    ruleset, problems = read_rules(paths, builtin=builtin)
    responders, more = compile_responders(ruleset, templates=builtin_templates(),
                                          handlers=providers.HANDLERS)
    if consulted is not None:
        consulted.update(responders.templates)
    if problems or more:
        raise RuleError(problems + more)
    return Packs.of(ruleset, responders)
