"""One rule set per distinct set of packs among sandbox policies, built from the running
packs.

A policy that adds packs (from the policy packs loaded with ``--policy-rules``) or
disables loaded packs gets :class:`~guard.packs.Packs` of its own (an engine over those
rules, and the responses of both the running and the policy packs); every sandbox with
the same packs shares them, and a sandbox with the default policy uses the running
packs themselves. They are rebuilt when the running packs are reloaded (the cache is
keyed by them), so a policy never decides with stale rules.

>>> from guard.packs import load_packs
>>> base = load_packs([])
>>> policies = PolicyEngines()
>>> policies.packs(base, Policy()) is base
True
>>> no_stripe = policies.packs(base, Policy(disable_packs=["stripe"]))
>>> any(r.pack == "stripe" for r in no_stripe.ruleset.rules)
False
"""

from __future__ import annotations

from typing import Any

from guard.errors import SandboxError
from guard.limits import WORLD_LIMITS_OPTION
from guard.packs import Packs
from guard.rules.loader import RuleSet
from guard.sandbox.model import Policy, PolicyLimits
from guard.synth import openworld
from guard.synth.responders import Responders
from guard.synth.simulator import Simulator

_MAX_ENGINES = 256  # distinct rule sets kept; more are rebuilt on demand


class PolicyEngines:
    def __init__(self, extra: Packs | None = None) -> None:
        self.extra = extra or Packs.of(RuleSet([]), Responders())
        self._base: Packs | None = None
        self._responders = Responders()  # the running packs' and the policy packs'
        self._engines: dict[tuple[tuple[str, ...], tuple[str, ...]], Packs] = {}
        self._simulators: dict[tuple[Any, ...], Simulator] = {}

    def simulator(self, base: Simulator, policy: Policy) -> Simulator:
        """``base``, or one sharing its worlds (and its fault draws) whose options add the
        policy's webhook hosts and strict world and whose faults are the policy's (one per
        distinct combination)."""
        if not policy.webhook_allow and policy.faults is None and not policy.strict_world \
                and policy.limits is None:
            return base
        limits = policy.limits
        key = (tuple(sorted(set(policy.webhook_allow))), policy.faults_key(),
               policy.strict_world,
               None if limits is None else (limits.max_world_objects, limits.max_world_bytes))
        found = self._simulators.get(key)
        if found is None or found.worlds is not base.worlds:
            if len(self._simulators) >= _MAX_ENGINES:
                self._simulators.pop(next(iter(self._simulators)))
            hosts = tuple(base.options.get("webhook_allow") or ()) + key[0]
            options = {**base.options, "webhook_allow": hosts}
            if policy.strict_world:
                options[openworld.OPTION] = True
            if limits is not None:
                options[WORLD_LIMITS_OPTION] = tighter(base.options.get(WORLD_LIMITS_OPTION),
                                                       limits)
            found = self._simulators[key] = Simulator(
                base.worlds, options=options, faults=policy.faults, injector=base.injector)
        return found

    def known_packs(self, base: Packs) -> set[str]:
        return {r.pack for r in base.ruleset.rules} | {r.pack for r in self.extra.ruleset.rules}

    def check(self, base: Packs, policy: Policy) -> None:
        """Refuse a policy naming packs that are not loaded (SandboxError)."""
        known = self.known_packs(base)
        unknown = sorted((set(policy.packs) | set(policy.disable_packs)) - known)
        if unknown:
            raise SandboxError("invalid_request",
                               f"policy names unknown packs {', '.join(unknown)} "
                               f"(loaded: {', '.join(sorted(known)) or 'none'})")

    def packs(self, base: Packs, policy: Policy) -> Packs:
        """The packs ``policy`` decides with: ``base`` itself for the default policy."""
        key = policy.rules_key()
        if not key[0] and not key[1]:
            return base
        if self._base is not base:  # the running packs were reloaded
            self._base, self._engines = base, {}
            self._responders = base.responders.merge(self.extra.responders)
        found = self._engines.get(key)
        if found is None:
            if len(self._engines) >= _MAX_ENGINES:
                self._engines.pop(next(iter(self._engines)))
            found = self._engines[key] = Packs.of(self._ruleset(base.ruleset, *key),
                                                  self._responders)
        return found

    def _ruleset(self, base: RuleSet, packs: tuple[str, ...],
                 disabled: tuple[str, ...]) -> RuleSet:
        present = {r.pack for r in base.rules}
        rules = [r for r in base.rules if r.pack not in disabled]
        rules += [r for r in self.extra.ruleset.rules if r.pack in packs
                  and r.pack not in present and r.pack not in disabled]
        return RuleSet(rules, base.packs, base.files)


def tighter(own: Any, limits: PolicyLimits) -> tuple[int, int, str, str]:
    """guard's world limits ``(objects, bytes)`` (0: none) tightened by a policy's: the
    smaller of each wins, named by where it comes from (for the refusal's message).

    >>> tighter((6, 0), PolicyLimits(max_world_objects=10, max_world_bytes=500))
    (6, 500, '--max-world-objects', "the sandbox policy's limits.max_world_bytes")
    """
    objects, size = tuple(own or (0, 0))[:2]

    def least(mine: int, theirs: int | None, flag: str, field: str) -> tuple[int, str]:
        if theirs is None or (mine and mine <= theirs):
            return mine, flag
        return theirs, f"the sandbox policy's limits.{field}"

    o, o_by = least(objects, limits.max_world_objects, "--max-world-objects",
                    "max_world_objects")
    b, b_by = least(size, limits.max_world_bytes, "--max-world-bytes", "max_world_bytes")
    return o, b, o_by, b_by
