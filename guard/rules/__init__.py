"""Rule files: YAML in, validated pydantic models, compiled matchers out.

``loader`` (files -> :class:`~guard.rules.loader.RuleSet`), ``model`` / ``base`` /
``casemodel`` (the pydantic models and the JSON Schema they export, ``schema``),
``source`` and ``validate`` (positions for ``path:line:column``), ``compiled``,
``matchers``, ``pathtemplate`` and ``paths`` (what a rule checks per request). What a
simulate rule answers is compiled by :mod:`guard.synth.responders`.

>>> from guard.rules.loader import load_rules
>>> ruleset = load_rules([])            # built-in packs only
>>> "stripe.customers.create" in ruleset.by_id
True
"""
