"""One engine per distinct rule set among sandbox policies, built from the running rules.

A policy that adds packs (from the policy packs loaded with ``--policy-rules``) or
disables loaded packs gets an :class:`~guard.engine.Engine` of its own; every sandbox
with the same packs shares it, and a sandbox with the default policy uses the running
engine itself. Engines are rebuilt when the running rules are reloaded (the cache is
keyed by the running engine), so a policy never decides with stale rules.

>>> from guard.rules import load_rules
>>> base = Engine(load_rules([]))
>>> engines = PolicyEngines()
>>> engines.engine(base, Policy()) is base
True
>>> no_stripe = engines.engine(base, Policy(disable_packs=["stripe"]))
>>> any(r.pack == "stripe" for r in no_stripe.ruleset.rules)
False
"""

from __future__ import annotations

from guard.engine import Engine
from guard.errors import SandboxError
from guard.rules.loader import RuleSet
from guard.sandbox.model import Policy
from guard.synth.simulator import Simulator

_MAX_ENGINES = 256  # distinct rule sets kept; more are rebuilt on demand


class PolicyEngines:
    def __init__(self, extra: RuleSet | None = None) -> None:
        self.extra = extra or RuleSet([])
        self._base: Engine | None = None
        self._engines: dict[tuple[tuple[str, ...], tuple[str, ...]], Engine] = {}
        self._simulators: dict[tuple[str, ...], Simulator] = {}

    def simulator(self, base: Simulator, policy: Policy) -> Simulator:
        """``base``, or one sharing its worlds whose options add the policy's webhook
        hosts (one per distinct host list)."""
        if not policy.webhook_allow:
            return base
        key = tuple(sorted(set(policy.webhook_allow)))
        found = self._simulators.get(key)
        if found is None or found.worlds is not base.worlds:
            if len(self._simulators) >= _MAX_ENGINES:
                self._simulators.pop(next(iter(self._simulators)))
            hosts = tuple(base.options.get("webhook_allow") or ()) + key
            found = self._simulators[key] = Simulator(
                base.worlds, options={**base.options, "webhook_allow": hosts})
        return found

    def known_packs(self, base: Engine) -> set[str]:
        return {r.pack for r in base.ruleset.rules} | {r.pack for r in self.extra.rules}

    def check(self, base: Engine, policy: Policy) -> None:
        """Refuse a policy naming packs that are not loaded (SandboxError)."""
        known = self.known_packs(base)
        unknown = sorted((set(policy.packs) | set(policy.disable_packs)) - known)
        if unknown:
            raise SandboxError("invalid_request",
                               f"policy names unknown packs {', '.join(unknown)} "
                               f"(loaded: {', '.join(sorted(known)) or 'none'})")

    def engine(self, base: Engine, policy: Policy) -> Engine:
        key = policy.rules_key()
        if not key[0] and not key[1]:
            return base
        if self._base is not base:  # the running rules were reloaded
            self._base, self._engines = base, {}
        found = self._engines.get(key)
        if found is None:
            if len(self._engines) >= _MAX_ENGINES:
                self._engines.pop(next(iter(self._engines)))
            found = self._engines[key] = Engine(self._ruleset(base.ruleset, *key))
        return found

    def _ruleset(self, base: RuleSet, packs: tuple[str, ...],
                 disabled: tuple[str, ...]) -> RuleSet:
        present = {r.pack for r in base.rules}
        rules = [r for r in base.rules if r.pack not in disabled]
        rules += [r for r in self.extra.rules if r.pack in packs and r.pack not in present
                  and r.pack not in disabled]
        return RuleSet(rules, base.packs, base.files, base.templates)
