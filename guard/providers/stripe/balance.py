"""The account balance and its balance transactions.

Each captured charge adds a ``charge`` transaction (Stripe's standard US card fee,
2.9% + 30 cents, and funds available two days later); each refund a negative
``refund`` transaction. ``/v1/balance`` sums them per currency: ``pending`` until
``available_on``, then ``available``.
"""

from __future__ import annotations

from typing import Any

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.resource import list_all, retrieve

PENDING_SECONDS = 2 * 24 * 3600


def fee_for(amount: int) -> int:
    return round(amount * 0.029) + 30 if amount > 0 else 0


def add_transaction(call: Call, *, amount: int, currency: str, source: str, type: str,
                    description: str | None, immediate: bool = False) -> dict[str, Any]:
    fee = fee_for(amount) if type == "charge" else 0
    txn = {
        "id": call.new_id("balance_transaction"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": call.now if immediate else call.now + PENDING_SECONDS,
        "balance_type": "payments",
        "created": call.now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": [{"amount": fee, "application": None, "currency": currency,
                         "description": "Stripe processing fees", "type": "stripe_fee"}]
        if fee else [],
        "net": amount - fee,
        "reporting_category": type,
        "source": source,
        "status": "available" if immediate else "pending",
        "type": type,
    }
    return call.save(txn)


def _settled(call: Call, txn: dict[str, Any]) -> dict[str, Any]:
    """Pending transactions become available once their day has come."""
    if txn["status"] == "pending" and txn["available_on"] <= call.now:
        txn = dict(txn, status="available")
    return txn


@endpoint
def retrieve_balance(call: Call) -> dict[str, Any]:
    sums: dict[str, dict[str, int]] = {}
    for txn in call.all("balance_transaction"):
        txn = _settled(call, txn)
        per = sums.setdefault(txn["currency"], {"available": 0, "pending": 0})
        per[txn["status"]] += txn["net"]
    if not sums:
        sums["usd"] = {"available": 0, "pending": 0}

    def part(state: str) -> list[dict[str, Any]]:
        return [{"amount": v[state], "currency": cur, "source_types": {"card": v[state]}}
                for cur, v in sorted(sums.items())]

    return {
        "object": "balance",
        "available": part("available"),
        "connect_reserved": [{"amount": 0, "currency": cur} for cur in sorted(sums)],
        "livemode": False,
        "pending": part("pending"),
    }


retrieve_balance_transaction = retrieve("balance_transaction", view=_settled)


list_balance_transactions = list_all(
    "balance_transaction", view=_settled,
    filters={"type": "type", "source": "source", "currency": "currency"})