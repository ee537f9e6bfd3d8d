"""An orchestrator: one sandbox from the Stripe catalogue seed, an agent run in it, three
forks of the result, three variants of the next step, and their diffs compared.

Start guard with the admin API and proxy-user identity, then run this:

    guard run --sandbox-from proxy-user --admin-listen 127.0.0.1:9090 &
    GUARD_ADMIN=http://127.0.0.1:9090 GUARD_PROXY=http://127.0.0.1:8080 \\
    GUARD_CA=~/.guard/mitmproxy-ca-cert.pem python examples/orchestrator.py

(the admin token is read from $GUARD_ADMIN_TOKEN or ~/.guard/admin-token). It prints
what each variant changed and exits 0 when the three worlds diverged as they should.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import stripe

from guard.client import Admin, Sandbox


def stripe_for(sandbox: Sandbox, proxy: str) -> stripe.StripeClient:
    """The official SDK, its every call proven to be this sandbox's (proxy credentials)."""
    return stripe.StripeClient("sk_test_orchestrated", max_network_retries=0,
                               http_client=stripe.RequestsClient(
                                   proxy=sandbox.proxy_url(proxy)))


def agent(sdk: stripe.StripeClient) -> dict[str, str]:
    """The agent's first task: a customer on the catalogue's Pro plan, paid by card."""
    [price] = [p for p in sdk.v1.prices.list(params={"limit": 100}).data
               if p.lookup_key == "pro_monthly"]
    customer = sdk.v1.customers.create(params={"email": "jenny@example.com"})
    card = sdk.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    sdk.v1.customers.update(customer.id, params={
        "invoice_settings": {"default_payment_method": card.id}})
    subscription = sdk.v1.subscriptions.create(params={"customer": customer.id,
                                                       "items": [{"price": price.id}]})
    charge = sdk.v1.charges.create(params={"amount": 5000, "currency": "usd",
                                           "customer": customer.id, "source": "tok_visa",
                                           "description": "setup fee"})
    return {"customer": customer.id, "subscription": subscription.id, "charge": charge.id}


def refund_the_fee(sdk: stripe.StripeClient, made: dict[str, str]) -> None:
    sdk.v1.refunds.create(params={"charge": made["charge"]})


def downgrade(sdk: stripe.StripeClient, made: dict[str, str]) -> None:
    [starter] = [p for p in sdk.v1.prices.list(params={"limit": 100}).data
                 if p.lookup_key == "starter_monthly"]
    sub = sdk.v1.subscriptions.retrieve(made["subscription"])
    sdk.v1.subscriptions.update(made["subscription"], params={
        "items": [{"id": sub["items"].data[0].id, "price": starter.id}]})


def cancel(sdk: stripe.StripeClient, made: dict[str, str]) -> None:
    sdk.v1.subscriptions.cancel(made["subscription"])
    sdk.v1.customers.update(made["customer"], params={"metadata": {"churned": "yes"}})


VARIANTS: dict[str, Callable[[stripe.StripeClient, dict[str, str]], None]] = {
    "refund": refund_the_fee, "downgrade": downgrade, "cancel": cancel}


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def summary(diff: dict[str, Any]) -> list[str]:
    """One line per change an evaluator reads."""
    lines = []
    for name, c in sorted(diff["collections"].items()):
        lines += [f"+ {name} {o['id']}" for o in c["created"]]
        lines += [f"~ {name} {ch['id']} {field}: {short(v['before'])} -> {short(v['after'])}"
                  for ch in c["changed"] for field, v in sorted(ch["fields"].items())]
        lines += [f"- {name} {o['id']}" for o in c["deleted"]]
    return lines


def main() -> int:
    proxy = os.environ.get("GUARD_PROXY", "http://127.0.0.1:8080")
    stripe.ca_bundle_path = os.path.expanduser(
        os.environ.get("GUARD_CA", "~/.guard/mitmproxy-ca-cert.pem"))
    with Admin(os.environ.get("GUARD_ADMIN", "http://127.0.0.1:9090"),
               os.environ.get("GUARD_ADMIN_TOKEN")) as admin:
        base = admin.create(from_="stripe-catalogue", labels={"experiment": "retention"})
        made = agent(stripe_for(base, proxy))
        point = admin.snapshot(base.id)  # what every variant starts from
        diffs = {}
        for name, variant in VARIANTS.items():
            fork = admin.fork(base.id, labels={"experiment": "retention", "variant": name})
            variant(stripe_for(fork, proxy), made)
            diffs[name] = admin.diff(fork.id, since=point.id)
        untouched = admin.diff(base.id, since=point.id)

    for name, diff in diffs.items():
        print(f"variant {name}:")
        for line in summary(diff) or ["(no changes)"]:
            print(f"  {line}")
    refunds = [n for n, d in diffs.items()
               if any("refunds" in c and v["created"] for c, v in d["collections"].items())]
    ok = refunds == ["refund"] and not summary(untouched) and all(
        summary(d) for d in diffs.values()) and len({tuple(summary(d))
                                                     for d in diffs.values()}) == 3
    print("variants diverged as expected" if ok else "UNEXPECTED: see the diffs above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
