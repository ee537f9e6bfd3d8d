"""A stateful Stripe: every handler the built-in ``rules/stripe.yaml`` routes to.

Each resource has its own module; objects live in the sandbox's world (collections
``stripe.*``, see :mod:`.kinds`), so what one call creates the next call finds.
:mod:`.api` wraps every endpoint (API key, ``Idempotency-Key``, ``expand[]``, errors,
webhooks). See docs/stripe.md.
"""

from __future__ import annotations

from guard.providers import handler
from guard.providers.stripe.balance import (
    list_balance_transactions,
    retrieve_balance,
    retrieve_balance_transaction,
)
from guard.providers.stripe.charges import (
    capture_charge,
    create_charge,
    list_charges,
    retrieve_charge,
    update_charge,
)
from guard.providers.stripe.checkout import (
    create_checkout_session,
    expire_checkout_session,
    list_checkout_session_line_items,
    list_checkout_sessions,
    retrieve_checkout_session,
)
from guard.providers.stripe.customers import (
    create_customer,
    delete_customer,
    list_customers,
    retrieve_customer,
    search_customers,
    update_customer,
)
from guard.providers.stripe.events import (
    create_webhook_endpoint,
    delete_webhook_endpoint,
    list_events,
    list_webhook_endpoints,
    retrieve_event,
    retrieve_webhook_endpoint,
    update_webhook_endpoint,
)
from guard.providers.stripe.invoiceitems import (
    create_invoiceitem,
    delete_invoiceitem,
    list_invoiceitems,
    retrieve_invoiceitem,
    update_invoiceitem,
)
from guard.providers.stripe.invoices import (
    create_invoice,
    delete_invoice,
    finalize_invoice,
    list_invoice_lines,
    list_invoices,
    mark_uncollectible_invoice,
    pay_invoice,
    retrieve_invoice,
    send_invoice,
    update_invoice,
    void_invoice,
)
from guard.providers.stripe.misc import auth_error, create_token, retrieve_token, unrecognized_url
from guard.providers.stripe.payment_intents import (
    cancel_payment_intent,
    capture_payment_intent,
    confirm_payment_intent,
    create_payment_intent,
    list_payment_intents,
    retrieve_payment_intent,
    update_payment_intent,
)
from guard.providers.stripe.payment_methods import (
    attach_payment_method,
    create_payment_method,
    detach_payment_method,
    list_customer_payment_methods,
    list_payment_methods,
    retrieve_payment_method,
    update_payment_method,
)
from guard.providers.stripe.products import (
    create_price,
    create_product,
    delete_product,
    list_prices,
    list_products,
    retrieve_price,
    retrieve_product,
    update_price,
    update_product,
)
from guard.providers.stripe.refunds import (
    create_charge_refund,
    create_refund,
    list_charge_refunds,
    list_refunds,
    retrieve_refund,
    update_refund,
)
from guard.providers.stripe.subscriptions import (
    cancel_subscription,
    create_subscription,
    list_subscription_items,
    list_subscriptions,
    retrieve_subscription,
    retrieve_subscription_item,
    update_subscription,
)

handler(auth_error)

__all__ = [
    "attach_payment_method",
    "auth_error",
    "cancel_payment_intent",
    "cancel_subscription",
    "capture_charge",
    "capture_payment_intent",
    "confirm_payment_intent",
    "create_charge",
    "create_charge_refund",
    "create_checkout_session",
    "create_customer",
    "create_invoice",
    "create_invoiceitem",
    "create_payment_intent",
    "create_payment_method",
    "create_price",
    "create_product",
    "create_refund",
    "create_subscription",
    "create_token",
    "create_webhook_endpoint",
    "delete_customer",
    "delete_invoice",
    "delete_invoiceitem",
    "delete_product",
    "delete_webhook_endpoint",
    "detach_payment_method",
    "expire_checkout_session",
    "finalize_invoice",
    "list_balance_transactions",
    "list_charge_refunds",
    "list_charges",
    "list_checkout_session_line_items",
    "list_checkout_sessions",
    "list_customer_payment_methods",
    "list_customers",
    "list_events",
    "list_invoice_lines",
    "list_invoiceitems",
    "list_invoices",
    "list_payment_intents",
    "list_payment_methods",
    "list_prices",
    "list_products",
    "list_refunds",
    "list_subscription_items",
    "list_subscriptions",
    "list_webhook_endpoints",
    "mark_uncollectible_invoice",
    "pay_invoice",
    "retrieve_balance",
    "retrieve_balance_transaction",
    "retrieve_charge",
    "retrieve_checkout_session",
    "retrieve_customer",
    "retrieve_event",
    "retrieve_invoice",
    "retrieve_invoiceitem",
    "retrieve_payment_intent",
    "retrieve_payment_method",
    "retrieve_price",
    "retrieve_product",
    "retrieve_refund",
    "retrieve_subscription",
    "retrieve_subscription_item",
    "retrieve_token",
    "retrieve_webhook_endpoint",
    "search_customers",
    "send_invoice",
    "unrecognized_url",
    "update_charge",
    "update_customer",
    "update_invoice",
    "update_invoiceitem",
    "update_payment_intent",
    "update_payment_method",
    "update_price",
    "update_product",
    "update_refund",
    "update_subscription",
    "update_webhook_endpoint",
    "void_invoice",
]
