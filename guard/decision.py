"""What guard does with a request, and which rule said so. A leaf: the engine, the
simulator, the addon, ``guard test`` and replay all speak it, and it imports nothing
of theirs at run time.

>>> DEFAULT_DECISION.action is Action.BLOCK, DEFAULT_DECISION.rule_id
(True, 'guard.default-deny')
>>> Action("allow") is Action.ALLOW, Action.ALLOW == "allow"
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.rules.compiled import CompiledRule

DEFAULT_RULE_ID = "guard.default-deny"
DEFAULT_REASON = "no rule matches this request; guard denies by default"

_EMPTY: Mapping[str, str] = MappingProxyType({})


class Action(StrEnum):
    """What happens to a request. ``error`` is guard failing closed (never a rule's)."""

    SIMULATE = "simulate"
    BLOCK = "block"
    ALLOW = "allow"
    ERROR = "error"


@dataclass(frozen=True)
class Decision:
    """What happens to a request, and which rule said so."""

    action: Action
    rule_id: str
    reason: str
    rule: CompiledRule | None = None
    captures: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


DEFAULT_DECISION = Decision(Action.BLOCK, DEFAULT_RULE_ID, DEFAULT_REASON)


@dataclass(frozen=True)
class NearMiss:
    """A rule that applied to the host but did not match, and why."""

    rule_id: str
    why: str
    any_host: bool = False  # the rule applies to every host (hosts: ["*"]), not this one's


@dataclass(frozen=True)
class Explanation:
    """A decision with the near misses that ``guard explain`` prints."""

    decision: Decision
    near_misses: tuple[NearMiss, ...]
    candidates: int

