"""Rule files: YAML in, validated pydantic models, compiled rules out.

>>> from guard.rules import load_rules
>>> ruleset = load_rules([])            # built-in packs only
>>> "stripe.customers.create" in ruleset.by_id
True
"""

from guard.rules.loader import RuleSet, builtin_rule_paths, load_rules

__all__ = ["RuleSet", "builtin_rule_paths", "load_rules"]
