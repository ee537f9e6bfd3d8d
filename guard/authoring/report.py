"""Print test results and coverage the way a test runner does: one line per case, details
for each failure (expected vs actual, the deciding rule, the near misses), then the
summary line ``N passed, N failed``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TextIO

from guard.authoring.coverage import AuditCoverage
from guard.authoring.runner import CaseResult
from guard.rules.compiled import CompiledRule
from guard.textsafe import printable

BODY_SHOWN = 300  # characters of an actual body shown under a failure


def print_results(results: list[CaseResult], out: TextIO, *, verbose: bool = True) -> None:
    group = None
    for r in results:
        if r.group is not group:
            group = r.group
            if verbose or any(not x.passed for x in results if x.group is group):
                kind = f" (pack {group.pack})" if group.pack else ""
                print(f"{rel(group.path)}{kind}", file=out)
        if r.passed:
            if verbose:
                print(f"  ok    {r.located.case.name}", file=out)
            continue
        print(f"  FAIL  {r.located.case.name}", file=out)
        for line in failure_details(r):
            print(f"        {line}", file=out)
    print(summary(results), file=out)


def summary(results: list[CaseResult]) -> str:
    passed = sum(r.passed for r in results)
    return f"{passed} passed, {len(results) - passed} failed"


def failure_details(r: CaseResult) -> list[str]:
    o = r.outcome
    lines = [f"at {rel(r.located.where)}", f"request: {o.request.method} {o.request.url}"]
    lines += r.failures
    decided = f"decided by: {o.seen.rule} ({o.seen.action})"
    lines.append(decided + (f" at {rel(o.source)}" if o.source else ""))
    if o.error:
        lines.append(f"error: {o.error}")
    if o.seen.status is not None:
        body = o.seen.body.decode("utf-8", errors="replace")
        if len(body) > BODY_SHOWN:
            body = body[: BODY_SHOWN - 3] + "..."
        lines.append(f"response: {o.seen.status} {body}")
    own = [m for m in o.near_misses if not m.any_host]
    if own:
        lines.append("near misses (tried first, did not match):")
        lines += [f"  {m.rule_id}: {m.why}" for m in own]
    every = [m.rule_id for m in o.near_misses if m.any_host]
    if every:
        lines.append(f"rules for every host, tried first, did not match: {', '.join(every)}")
    return lines


def print_unexercised(missing: dict[str, list[CompiledRule]], total: int, out: TextIO) -> None:
    count = sum(len(v) for v in missing.values())
    print(f"coverage: {total - count} of {total} rules exercised by cases", file=out)
    _print_rules(missing, "not exercised", out)


def print_audit_coverage(cov: AuditCoverage, total: int, out: TextIO) -> None:
    never = sum(len(v) for v in cov.never.values())
    print(f"audit log: {cov.events} events; {total - never} of {total} rules fired", file=out)
    if cov.damaged:
        lines = ", ".join(map(str, cov.damaged[:10])) + (" ..." if len(cov.damaged) > 10 else "")
        print(f"skipped {len(cov.damaged)} line(s) that are not audit events: {lines}", file=out)
    if never:
        print("rules that never fired:", file=out)
        _print_rules(cov.never, "never fired", out)
    if cov.default:
        print("requests no rule matched (guard.default-deny), by host:", file=out)
        hosts = [printable(h.host) for h in cov.default]
        width = max(len(h) for h in hosts)
        for host, h in zip(hosts, cov.default, strict=True):
            print(f"  {host:<{width}}  {h.count:>5}  {', '.join(map(printable, h.examples))}",
                  file=out)
    else:
        print("no request fell to guard.default-deny", file=out)


def _print_rules(by_pack: dict[str, list[CompiledRule]], what: str, out: TextIO) -> None:
    for pack, rules in by_pack.items():
        print(f"  {pack}: {len(rules)} {what}", file=out)
        width = max(len(r.id) for r in rules)
        for rule in rules:
            print(f"    {rule.id:<{width}}  {rel(str(rule.source))}", file=out)


def rel(where: str) -> str:
    """``where`` relative to the working directory when it is below it (shorter to read)."""
    cwd = os.getcwd() + os.sep
    return where[len(cwd):] if where.startswith(cwd) else where


def count_rules(rules: Iterable[CompiledRule], packs: Iterable[str]) -> int:
    wanted = set(packs)
    return sum(1 for r in rules if r.pack in wanted)


__all__ = ["count_rules", "print_audit_coverage", "print_results", "print_unexercised",
           "summary"]
