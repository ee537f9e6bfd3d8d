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
# Ids without a prefix that Stripe's examples (and so the SDK's tests) use as they are.
AS_IS = {"coupon": "Z4OV52SU"}
CREATED = 1767225600  # the virtual clock's epoch (2026-01-01T00:00:00Z)
# Other ids stripe-python's own tests (api_resources/, services/, generated examples) name,
# by object type: each is a copy of that type's placeholder object under that id.
ALIASES = {
    "account": ["acct_123"], "charge": ["ch_123"], "checkout.session": ["sess_xyz"],
    "customer": ["cus_123", "cus_xyz", "cus_QXg1o8vcGmoR32"], "ephemeral_key": ["ephkey_123"],
    "fee_refund": ["fr_123"], "file": ["file_123"],
    "financial_connections.session": ["fcsess_xyz"], "invoice": ["in_123"],
    "issuing.personalization_design": ["pd_xyz"], "payment_link": ["pl_xyz"],
    "payment_method_configuration": ["foo"], "quote": ["qt_123"], "source": ["src_123"],
    "tax_id": ["taxid_123", "txi_123"], "terminal.configuration": ["uc_123"],
    "test_helpers.test_clock": ["clock_xyz"], "token": ["tok_123", "tok_xxxx"],
    "transfer": ["tr_123"], "treasury.outbound_payment": ["bot_xxxxxxxxxxxxx"],
}


def main() -> int:
    resources = json.loads(FIXTURES.read_text())["resources"]
    collections: dict[str, dict[str, object]] = {}
    for name, obj in sorted(resources.items()):
        if name.startswith("deleted_") or not isinstance(obj, dict):
            continue
        sample = obj.get("id")
        if name in AS_IS and sample == AS_IS[name]:
            made = dict(obj, livemode=False)
        elif not isinstance(sample, str) or "_" not in sample or sample.startswith("obj_"):
            continue
        else:
            prefix = sample.rsplit("_", 1)[0]
            made = dict(obj, id=f"{prefix}_{PLACEHOLDER}", livemode=False)
        if isinstance(made.get("created"), int):
            made["created"] = CREATED
        kind = str(obj.get("object") or name)
        where = collections.setdefault(f"stripe.{kind.replace('.', '_')}s", {})
        where[made["id"]] = made
        for alias in ALIASES.get(kind, ()):
            where[alias] = dict(made, id=alias)
    seed = {"v": 1, "sandbox": "stripe-placeholders", "collections": collections,
            "counters": {}}
    OUT.write_text(json.dumps(seed, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}: {sum(len(c) for c in collections.values())} objects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
