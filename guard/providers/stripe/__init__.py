"""A stateful Stripe: the pack (``pack.yaml``) and every handler it routes to.

Each resource has its own module; objects live in the sandbox's world (collections
``stripe.*``, see :mod:`.kinds`), so what one call creates the next call finds.
:mod:`.api` wraps every endpoint (API key, ``Idempotency-Key``, ``expand[]``, errors,
webhooks). See docs/stripe.md.
"""

from guard.providers.stripe import (
    balance,
    charges,
    checkout,
    customers,
    events,
    invoiceitems,
    invoices,
    misc,
    payment_intents,
    payment_methods,
    products,
    refunds,
    subscriptions,
)
from guard.synth.handlers import handlers_in

HANDLERS = handlers_in(
    "stripe", balance, charges, checkout, customers, events, invoiceitems, invoices, misc,
    payment_intents, payment_methods, products, refunds, subscriptions,
)
