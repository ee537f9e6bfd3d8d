"""What rules cover: rules no test case exercised, and, from a recorded audit log, rules
that never fired and the requests that fell to the default rule (what to write next).

>>> from guard.rules.loader import load_rules
>>> log = ['{"rule": "stripe.live-key", "host": "api.stripe.com", "method": "GET",'
...        ' "url": "https://api.stripe.com/v1/x"}',
...        '{"rule": "guard.default-deny", "host": "api.acme.test", "method": "POST",'
...        ' "url": "https://api.acme.test/v2/orders?x=1"}']
>>> cov = audit_coverage(log, load_rules([]))
>>> cov.fired["stripe.live-key"], [(h.host, h.count, h.examples) for h in cov.default]
(1, [('api.acme.test', 1, ['POST /v2/orders'])])
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from guard.authoring.runner import CaseResult
from guard.decision import DEFAULT_RULE_ID
from guard.rules.compiled import CompiledRule
from guard.rules.loader import RuleSet

EXAMPLES = 3  # example requests shown per host


def unexercised(ruleset: RuleSet, packs: Iterable[str],
                results: Iterable[CaseResult]) -> dict[str, list[CompiledRule]]:
    """Per pack (of ``packs``), the rules that decided none of the cases, in file order."""
    decided = {r.outcome.seen.rule for r in results}
    return _by_pack(ruleset, set(packs), decided)


@dataclass
class HostMisses:
    """Requests to one host that no rule matched."""

    host: str
    count: int = 0
    examples: list[str] = field(default_factory=list)  # "METHOD /path", distinct


@dataclass
class AuditCoverage:
    events: int
    fired: Counter[str]
    never: dict[str, list[CompiledRule]]
    default: list[HostMisses]  # most requests first
    damaged: list[int]  # line numbers that were not audit events

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "fired": dict(self.fired.most_common()),
            "never_fired": {pack: [{"rule": r.id, "source": str(r.source)} for r in rules]
                            for pack, rules in self.never.items()},
            "default_deny": [{"host": h.host, "count": h.count, "examples": h.examples}
                             for h in self.default],
            "damaged_lines": self.damaged,
        }


def read_audit_coverage(path: Path, ruleset: RuleSet) -> AuditCoverage:
    """:func:`audit_coverage` of an audit log file (raises ``OSError``)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return audit_coverage(f, ruleset)


def audit_coverage(lines: Iterable[str], ruleset: RuleSet) -> AuditCoverage:
    """Count rule hits in audit events (JSON lines with ``rule`` and ``host``). Events of
    guard's own (reloads, raw TCP) count for nothing; lines that are not events are
    listed in ``damaged`` and skipped."""
    fired: Counter[str] = Counter()
    misses: dict[str, HostMisses] = {}
    events = 0
    damaged: list[int] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            damaged.append(n)
            continue
        if not isinstance(event, dict) or not isinstance(event.get("rule"), str):
            damaged.append(n)
            continue
        events += 1
        rule = event["rule"]
        fired[rule] += 1
        if rule == DEFAULT_RULE_ID:
            host = str(event.get("host") or urlsplit(str(event.get("url", ""))).hostname or "?")
            entry = misses.setdefault(host, HostMisses(host))
            entry.count += 1
            example = f"{event.get('method', '?')} {urlsplit(str(event.get('url', ''))).path}"
            if example not in entry.examples and len(entry.examples) < EXAMPLES:
                entry.examples.append(example)
    never = _by_pack(ruleset, {lp.pack.pack for lp in ruleset.packs}, set(fired))
    default = sorted(misses.values(), key=lambda h: (-h.count, h.host))
    return AuditCoverage(events, fired, never, default, damaged)


def _by_pack(ruleset: RuleSet, packs: set[str], hit: set[str]) -> dict[str, list[CompiledRule]]:
    out: dict[str, list[CompiledRule]] = {}
    for rule in ruleset.rules:
        if rule.pack in packs and rule.id not in hit:
            out.setdefault(rule.pack, []).append(rule)
    return out
