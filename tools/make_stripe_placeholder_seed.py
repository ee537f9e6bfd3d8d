"""Write fixtures/seeds/stripe-placeholders.json: one object of each Stripe type, with the
placeholder id Stripe's documentation and SDK examples use (``cus_xxxxxxxxxxxxx``), made
from Stripe's example object of that type (guard/providers/stripe/spec/fixtures3.json).

    .venv/bin/python tools/make_stripe_placeholder_seed.py

``guard run --world stripe-placeholders`` then answers code written against those
examples (stripe-python's own tests, tools/stripe_python_suite.py) as if the objects
existed. Objects go in the collections guard's Stripe handlers use (``stripe.<type>s``).

The objects hold what Stripe's example objects say, with every example id they mention
(a person's ``account``, a reversal's ``transfer``, an application fee's ``refunds.url``)
turned into that object's placeholder id, so the person of the example account is a person
of ``acct_xxxxxxxxxxxxx``. An alias (another id the tests name, :data:`ALIASES`) is a copy
of the placeholder object under its own id; one nested under a parent the tests also name by
an alias (``person_123`` of ``acct_123``) says so in :data:`NESTED`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "guard" / "providers" / "stripe" / "spec" / "fixtures3.json"
OUT = ROOT / "fixtures" / "seeds" / "stripe-placeholders.json"
PLACEHOLDER = "xxxxxxxxxxxxx"
# Ids without a prefix that Stripe's examples (and so the SDK's tests) use as they are.
AS_IS = {"coupon": "Z4OV52SU", "capability": "card_payments"}
# An example id worth replacing wherever it appears: Stripe's shape (``acct_1PgafTB7WZ01zgkW``),
# not a word that other fields hold too (the capability ``card_payments``).
EXAMPLE_ID = re.compile(r"[a-z]+(?:_[a-z]+)*_(?=[A-Za-z]*[0-9])[A-Za-z0-9]{10,}")
CREATED = 1767225600  # the virtual clock's epoch (2026-01-01T00:00:00Z)
# Other ids stripe-python's own tests (api_resources/, services/, generated examples) name,
# by object type: each is a copy of that type's placeholder object under that id.
ALIASES = {
    "account": ["acct_123"], "charge": ["ch_123"], "checkout.session": ["sess_xyz"],
    "customer": ["cus_123", "cus_xyz", "cus_QXg1o8vcGmoR32"], "ephemeral_key": ["ephkey_123"],
    "file": ["file_123"],
    "financial_connections.session": ["fcsess_xyz"], "invoice": ["in_123"],
    "issuing.personalization_design": ["pd_xyz"], "payment_link": ["pl_xyz"],
    "payment_method_configuration": ["foo"], "quote": ["qt_123"], "source": ["src_123"],
    "tax_id": ["taxid_123", "txi_123"], "terminal.configuration": ["uc_123"],
    "test_helpers.test_clock": ["clock_xyz"], "token": ["tok_123", "tok_xxxx", "tok_xxxx_debit"],
    "transfer": ["tr_123"], "treasury.outbound_payment": ["bot_xxxxxxxxxxxxx"],
    "application_fee": ["fee_123"], "tax.calculation": ["xxx"],
}
# Aliases of objects that live under a parent, by type: alias id -> the fields that name
# its parent (stripe-python's tests/api_resources: the person ``person_123`` of
# ``acct_123``, its TestPerson's ``trr_123``, a customer's card and bank account sources,
# the reversal ``trr_123`` of ``tr_123``, the refund ``fr_123`` of ``fee_123``, ...).
NESTED: dict[str, dict[str, dict[str, str]]] = {
    "person": {"person_123": {"account": "acct_123"}, "trr_123": {"account": "acct_123"}},
    "bank_account": {"ba_123": {"customer": "cus_123"}},
    "card": {"card_123": {"customer": "cus_123"}},
    "transfer_reversal": {"trr_123": {"transfer": "tr_123"}},
    "fee_refund": {"fr_123": {"fee": "fee_123"}},
    "customer_balance_transaction": {"cbtxn_123": {"customer": "cus_123"}},
    "refund": {"re_abc": {"charge": "ch_123"}},
    "capability": {"acap_123": {"account": "acct_123"}},
    "source_transaction": {"srctxn_123": {"source": "src_123"}},
}
# Objects a seeded object has that the engine keeps beside it (a quote's line items live in
# ``stripe.items@<quote>``): the placeholder object of the second type, under each id of
# the first. A quote is never without line items, and Stripe's example quote shows none.
BESIDE = {"quote": "item"}
# Bank account tokens the tests name (an external account from ``btok_xxxxxxxxxxxxx``):
# Stripe's example token holding the placeholder bank account instead of its card.
BANK_TOKENS = ["btok_xxxxxxxxxxxxx"]


def renamed(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with every example id in it (whole strings and inside URLs) replaced.

    >>> renamed({"url": "/v1/transfers/tr_1Pg/reversals", "n": [ "tr_1Pg"]}, {"tr_1Pg": "tr_x"})
    {'url': '/v1/transfers/tr_x/reversals', 'n': ['tr_x']}
    """
    if isinstance(value, dict):
        return {k: renamed(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, ids) for v in value]
    if isinstance(value, str) and "_" in value:
        for old, new in ids.items():
            if old in value:
                value = value.replace(old, new)
    return value


def main() -> int:
    resources = json.loads(FIXTURES.read_text())["resources"]
    collections: dict[str, dict[str, object]] = {}
    made_from: list[tuple[str, dict[str, object]]] = []
    ids: dict[str, str] = {}  # example id -> placeholder id
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
        if isinstance(sample, str) and EXAMPLE_ID.fullmatch(sample):
            ids[sample] = made["id"]
        made_from.append((str(obj.get("object") or name), made))
    # longest first, so an id that holds another is replaced whole
    ids = dict(sorted(ids.items(), key=lambda kv: -len(kv[0])))
    for kind, made in made_from:
        made = renamed(made, ids)
        where = collections.setdefault(f"stripe.{kind.replace('.', '_')}s", {})
        where[str(made["id"])] = made
        placeholder = str(made["id"])
        for alias in ALIASES.get(kind, ()):
            where[alias] = renamed(made, {placeholder: alias})
        for alias, parent in NESTED.get(kind, {}).items():
            where[alias] = {**renamed(made, {placeholder: alias}), **parent}
    for owner, kind in BESIDE.items():
        owners = collections.get(f"stripe.{owner}s", {})
        items = collections.get(f"stripe.{kind}s", {})
        sample = next((k for k in items if k.endswith(PLACEHOLDER)), None)
        if sample is None:
            continue
        for owner_id in owners:
            collections[f"stripe.{kind}s@{owner_id}"] = {sample: items[sample]}
    tokens = collections.get("stripe.tokens", {})
    banks = collections.get("stripe.bank_accounts", {})
    token = tokens.get(f"tok_{PLACEHOLDER}")
    bank = banks.get(f"ba_{PLACEHOLDER}")
    for token_id in BANK_TOKENS if token is not None and bank is not None else ():
        made = {k: v for k, v in token.items() if k != "card"}
        tokens[token_id] = {**made, "id": token_id, "type": "bank_account",
                            "bank_account": {k: v for k, v in bank.items()
                                             if k not in ("account", "customer")}}
    seed = {"v": 1, "sandbox": "stripe-placeholders", "collections": collections,
            "counters": {}}
    OUT.write_text(json.dumps(seed, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}: {sum(len(c) for c in collections.values())} objects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
