"""Write fixtures/seeds/stripe-placeholders.json: one object of each Stripe type, with the
placeholder id Stripe's documentation and SDK examples use (``cus_xxxxxxxxxxxxx``), made
from Stripe's example object of that type (guard/providers/stripe/spec/fixtures3.json).

    .venv/bin/python tools/make_stripe_placeholder_seed.py

``guard run --world stripe-placeholders`` then answers code written against those
examples (stripe-python's own tests, tools/stripe_python_suite.py) as if the objects
existed. Objects go in the collections guard's Stripe handlers use (``stripe.<type>s``).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "guard" / "providers" / "stripe" / "spec" / "fixtures3.json"
OUT = ROOT / "fixtures" / "seeds" / "stripe-placeholders.json"
PLACEHOLDER = "xxxxxxxxxxxxx"
CREATED = 1767225600  # the virtual clock's epoch (2026-01-01T00:00:00Z)


def main() -> int:
    resources = json.loads(FIXTURES.read_text())["resources"]
    collections: dict[str, dict[str, object]] = {}
    for name, obj in sorted(resources.items()):
        if name.startswith("deleted_") or not isinstance(obj, dict):
            continue
        sample = obj.get("id")
        if not isinstance(sample, str) or "_" not in sample or sample.startswith("obj_"):
            continue
        prefix = sample.rsplit("_", 1)[0]
        made = dict(obj, id=f"{prefix}_{PLACEHOLDER}", livemode=False)
        if isinstance(made.get("created"), int):
            made["created"] = CREATED
        kind = str(obj.get("object") or name)
        collections.setdefault(f"stripe.{kind.replace('.', '_')}s", {})[made["id"]] = made
    seed = {"v": 1, "sandbox": "stripe-placeholders", "collections": collections,
            "counters": {}}
    OUT.write_text(json.dumps(seed, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}: {sum(len(c) for c in collections.values())} objects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
