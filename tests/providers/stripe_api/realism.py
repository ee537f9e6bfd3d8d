"""Compare objects guard produced with Stripe's example objects (``fixtures3.json``).

For every key of Stripe's example: is it present, and does its value have the same JSON
type? A produced ``null`` passes where the example is null or where Stripe's API marks
the field nullable (``T | null`` in stripe-node's types, see tools/stripe_types.py). A key
the example does not show passes only if it is a field of Stripe's API. Nested objects
that carry their own ``object`` (a list's refunds, an event's ``data.object``, a
subscription's items) are compared with the example of their own type.

Coverage of a type is the share of the example's keys (counted at every nesting level
compared) present in the produced object; keys below a field guard answered with null
are not counted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
TYPES = json.loads((Path(__file__).with_name("stripe_types.json")).read_text())["objects"]


def fixtures_path() -> Path:
    env = os.environ.get("GUARD_STRIPE_FIXTURES")
    return Path(env) if env else REPO / "guard" / "providers" / "stripe" / "spec" / "fixtures3.json"


def load_fixtures() -> dict[str, Any] | None:
    path = fixtures_path()
    if not path.is_file():
        return None
    return json.loads(path.read_text())["resources"]  # type: ignore[no-any-return]


def type_of(obj: dict[str, Any]) -> str:
    return f"deleted_{obj['object']}" if obj.get("deleted") else str(obj["object"])


@dataclass
class Report:
    """One type's result over all its samples."""

    samples: int = 0
    keys: int = 0
    hidden: int = 0  # example keys below a field guard answered with null
    present: int = 0
    missing: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    worst: float = 1.0

    @property
    def coverage(self) -> float:
        return self.present / self.keys if self.keys else 1.0


def _jtype(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    return "array" if isinstance(v, list) else "null"


class Comparer:
    def __init__(self, fixtures: dict[str, Any]) -> None:
        self.fixtures = fixtures
        self.reports: dict[str, Report] = {}

    def add(self, obj: dict[str, Any]) -> None:
        """Compare one produced object (and the typed objects nested in it)."""
        kind = type_of(obj)
        if kind not in self.fixtures:
            raise AssertionError(f"guard produced a {kind!r}, which fixtures3.json lacks")
        report = self.reports.setdefault(kind, Report())
        counts = [0, 0, 0]
        types = TYPES.get(kind, {"root": None, "types": {}})
        self._walk(obj, self.fixtures[kind], types["types"], types["root"], kind + ".",
                   report, counts)
        report.samples += 1
        report.keys += counts[0]
        report.present += counts[1]
        report.hidden += counts[2]
        if counts[0]:
            report.worst = min(report.worst, counts[1] / counts[0])

    def _walk(self, obj: dict[str, Any], example: dict[str, Any], types: dict[str, Any],
              iface: str | None, path: str, report: Report, counts: list[int]) -> None:
        fields = types.get(iface or "", {})
        for key, want in example.items():
            counts[0] += 1
            if key not in obj:
                report.missing.add(path + key)
                continue
            counts[1] += 1
            got, spec = obj[key], fields.get(key, {})
            if key == "metadata":
                continue  # the caller's own keys
            if got is None:
                counts[2] += _count_keys(want)
                if want is not None and not spec.get("nullable"):
                    report.problems.append(f"{path}{key}: null, but Stripe never nulls it")
                continue
            if want is not None and _jtype(got) != _jtype(want):
                report.problems.append(f"{path}{key}: {_jtype(got)}, Stripe has {_jtype(want)}")
                continue
            self._nested(got, want, types, spec.get("ref"), path + key, report, counts)
        for key in obj:
            if key not in example and iface is not None and key not in fields:
                report.problems.append(f"{path}{key}: not a field of Stripe's {iface}")

    def _nested(self, got: Any, want: Any, types: dict[str, Any], ref: str | None, path: str,
                report: Report, counts: list[int]) -> None:
        if isinstance(got, list):
            for item in got:
                sub = want[0] if isinstance(want, list) and want else None
                self._nested(item, sub, types, ref, path + "[]", report, counts)
            return
        if not isinstance(got, dict):
            return
        own = got.get("object")
        if (isinstance(own, str) and own in self.fixtures) or got.get("deleted"):
            self.add(got)  # compared as its own type
        elif isinstance(want, dict):
            self._walk(got, want, types, ref, path + ".", report, counts)


def _count_keys(value: Any) -> int:
    """Keys nested in an example value (a list counts its first element)."""
    if isinstance(value, list):
        return _count_keys(value[0]) if value else 0
    if not isinstance(value, dict):
        return 0
    return sum(1 + _count_keys(v) for v in value.values())


def table(reports: dict[str, Report]) -> str:
    """A Markdown table of coverage per type and overall. The last column also counts, as
    absent, the example's keys below fields guard answered with (an allowed) null."""
    rows = ["| type | samples | Stripe's keys present | lowest sample | counting keys under null |",
            "| --- | ---: | ---: | ---: | ---: |"]
    keys = present = hidden = 0
    for kind in sorted(reports):
        r = reports[kind]
        keys, present, hidden = keys + r.keys, present + r.present, hidden + r.hidden
        strict = r.present / (r.keys + r.hidden) if r.keys + r.hidden else 1.0
        rows.append(f"| `{kind}` | {r.samples} | {100 * r.coverage:.1f}% | "
                    f"{100 * r.worst:.1f}% | {100 * strict:.1f}% |")
    worst = min(r.worst for r in reports.values())
    rows.append(f"| **overall** | {sum(r.samples for r in reports.values())} | "
                f"**{100 * present / keys:.1f}%** | {100 * worst:.1f}% | "
                f"{100 * present / (keys + hidden):.1f}% |")
    return "\n".join(rows)
