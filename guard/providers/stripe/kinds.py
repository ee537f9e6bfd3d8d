"""The Stripe object types guard keeps, and where each lives in a sandbox's world.

Collections are named ``stripe.<plural>`` so other providers' objects in the same
sandbox never collide with Stripe's. ``noun`` is how Stripe names the type in a
``No such ...`` message.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    object: str  # the ``object`` field: customer, payment_intent, checkout.session
    collection: str  # world collection
    noun: str  # in "No such <noun>: '<id>'"
    prefix: str  # id prefix
    id_length: int  # characters after the prefix
    path: str  # list URL


_ALL = (
    Kind("customer", "stripe.customers", "customer", "cus", 14, "/v1/customers"),
    Kind("payment_method", "stripe.payment_methods", "PaymentMethod", "pm", 24,
         "/v1/payment_methods"),
    Kind("card", "stripe.cards", "source", "card", 24, "/v1/customers/{customer}/sources"),
    Kind("token", "stripe.tokens", "token", "tok", 24, "/v1/tokens"),
    Kind("payment_intent", "stripe.payment_intents", "payment_intent", "pi", 24,
         "/v1/payment_intents"),
    Kind("charge", "stripe.charges", "charge", "ch", 24, "/v1/charges"),
    Kind("refund", "stripe.refunds", "refund", "re", 24, "/v1/refunds"),
    Kind("balance_transaction", "stripe.balance_transactions", "balance transaction", "txn", 24,
         "/v1/balance_transactions"),
    Kind("product", "stripe.products", "product", "prod", 14, "/v1/products"),
    Kind("price", "stripe.prices", "price", "price", 24, "/v1/prices"),
    Kind("subscription", "stripe.subscriptions", "subscription", "sub", 24,
         "/v1/subscriptions"),
    Kind("subscription_item", "stripe.subscription_items", "subscription item", "si", 14,
         "/v1/subscription_items"),
    Kind("invoice", "stripe.invoices", "invoice", "in", 24, "/v1/invoices"),
    Kind("invoiceitem", "stripe.invoiceitems", "invoiceitem", "ii", 24, "/v1/invoiceitems"),
    Kind("checkout.session", "stripe.checkout_sessions", "checkout.session", "cs_test", 58,
         "/v1/checkout/sessions"),
    Kind("event", "stripe.events", "event", "evt", 24, "/v1/events"),
    Kind("webhook_endpoint", "stripe.webhook_endpoints", "webhook endpoint", "we", 24,
         "/v1/webhook_endpoints"),
)

KINDS: dict[str, Kind] = {k.object: k for k in _ALL}

IDEMPOTENCY = "stripe.idempotency_keys"
DELIVERIES = "stripe.webhook_deliveries"


def kind(object_name: str) -> Kind:
    return KINDS[object_name]
