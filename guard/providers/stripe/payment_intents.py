"""PaymentIntents and Stripe's status machine::

    requires_payment_method --(payment_method)--> requires_confirmation
        --confirm--> succeeded | requires_capture (manual) | requires_action (3-D Secure)
                   | requires_payment_method + last_payment_error (declined: HTTP 402)
    requires_capture --capture--> succeeded
    any open state --cancel--> canceled

Confirming creates the charge (``latest_charge``).
"""

from __future__ import annotations

from typing import Any

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.charges import capture_charge_amount, check_amount, make_charge
from guard.providers.stripe.errors import StripeError, unexpected_state
from guard.providers.stripe.payment_methods import attach_to, card_of, decline_error, resolve
from guard.providers.stripe.refunds import refund_charge
from guard.providers.stripe.resource import list_all, retrieve, update

OPEN = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation",
              "requires_action", "processing")
_STATE = "payment_intent_unexpected_state"


def _pm_options() -> dict[str, Any]:
    return {"card": {"installments": None, "mandate_options": None, "network": None,
                     "request_three_d_secure": "automatic"}}


def new_payment_intent(call: Call, *, amount: int, currency: str, customer: str | None,
                       description: str | None = None,
                       metadata: dict[str, str] | None = None) -> dict[str, Any]:
    pi_id = call.new_id("payment_intent")
    return {
        "id": pi_id, "object": "payment_intent",
        "amount": amount, "amount_capturable": 0, "amount_details": {"tip": {}},
        "amount_received": 0, "application": None, "application_fee_amount": None,
        "automatic_payment_methods": None, "canceled_at": None, "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{pi_id}_secret_{call.world.ids.base62(25)}",
        "confirmation_method": "automatic", "created": call.now, "currency": currency,
        "customer": customer, "customer_account": None, "description": description,
        "excluded_payment_method_types": None, "last_payment_error": None,
        "latest_charge": None, "livemode": False, "managed_payments": None,
        "metadata": metadata or {}, "next_action": None, "on_behalf_of": None,
        "payment_method": None, "payment_method_configuration_details": None,
        "payment_method_options": _pm_options(), "payment_method_types": ["card"],
        "processing": None, "receipt_email": None, "review": None,
        "setup_future_usage": None, "shipping": None, "source": None,
        "statement_descriptor": None, "statement_descriptor_suffix": None,
        "status": "requires_payment_method", "transfer_data": None, "transfer_group": None,
    }


def _apply(call: Call, pi: dict[str, Any]) -> None:
    """Fields a create or an update may set; some only while the intent is still open."""
    p = call.params
    for key in ("amount", "currency", "payment_method", "capture_method"):
        if p.has(key) and pi["status"] not in OPEN:
            raise unexpected_state(_STATE, f"This PaymentIntent's {key} could not be updated "
                                   f"because it has a status of {pi['status']}. You may only "
                                   f"update the {key} of a PaymentIntent with one of the "
                                   "following statuses: " + ", ".join(OPEN) + ".")
    if p.has("amount"):
        pi["amount"] = p.int("amount", required=True)
    if p.has("currency"):
        pi["currency"] = (p.str("currency", required=True) or "").lower()
    check_amount(pi["amount"], pi["currency"])
    if p.has("capture_method"):
        pi["capture_method"] = p.enum("capture_method", ("automatic", "automatic_async",
                                                         "manual"), default="automatic")
    if p.has("customer"):
        customer = p.str("customer")
        if customer is not None:
            call.get("customer", customer, param="customer")
        pi["customer"] = customer
    for key in ("description", "receipt_email", "statement_descriptor",
                "statement_descriptor_suffix", "transfer_group"):
        if p.has(key):
            pi[key] = p.str(key)
    if p.has("setup_future_usage"):
        pi["setup_future_usage"] = p.enum("setup_future_usage", ("off_session", "on_session"))
    if p.has("payment_method_types"):
        pi["payment_method_types"] = p.strings("payment_method_types") or ["card"]
    if p.sub("automatic_payment_methods").bool("enabled"):
        pi["automatic_payment_methods"] = {"allow_redirects": "always", "enabled": True}
        pi["payment_method_configuration_details"] = {"id": "pmc_" + call.world.ids.base62(24),
                                                      "parent": None}
    if p.has("payment_method"):
        pm_id = p.str("payment_method")
        pi["payment_method"] = resolve(call, pm_id)["id"] if pm_id else None
        if pi["status"] in ("requires_payment_method", "requires_confirmation"):
            pi["status"] = "requires_confirmation" if pi["payment_method"] else \
                "requires_payment_method"
    pi["metadata"] = p.metadata(pi["metadata"])


def confirm(call: Call, pi: dict[str, Any]) -> dict[str, Any] | Any:
    """Try to pay: succeeded, requires_capture, requires_action, or a 402 decline."""
    if pi["status"] == "succeeded":
        raise unexpected_state(_STATE, "You cannot confirm this PaymentIntent because it has "
                               "already succeeded after being previously confirmed.",
                               payment_intent=pi)
    if pi["status"] not in OPEN:
        raise unexpected_state(_STATE, "You cannot confirm this PaymentIntent because it has a "
                               f"status of {pi['status']}. Only a PaymentIntent with one of the "
                               "following statuses may be confirmed: requires_confirmation, "
                               "requires_payment_method, requires_action.", payment_intent=pi)
    if not pi["payment_method"]:
        raise unexpected_state(_STATE, "You cannot confirm this PaymentIntent because it's "
                               "missing a payment method. You can either update the "
                               "PaymentIntent with a payment method and then confirm it again, "
                               "or confirm it again directly with a payment method.",
                               payment_intent=pi)
    pm = call.get("payment_method", pi["payment_method"], param="payment_method")
    if pi["customer"] and pm["customer"] and pm["customer"] != pi["customer"]:
        raise StripeError(400, f"The provided PaymentMethod ({pm['id']}) belongs to a different "
                          "customer.", code="payment_method_unexpected_state",
                          param="payment_method")
    card = card_of(pm)
    if card is not None and card.authentication:
        pi.update(status="requires_action", next_action={
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect",
                               "stripe_js": "https://hooks.stripe.com/redirect/authenticate/"
                               f"src_{call.world.ids.base62(24)}",
                               "source": f"src_{call.world.ids.base62(24)}"}})
        call.save(pi)
        call.event("payment_intent.requires_action", pi)
        return pi
    manual = pi["capture_method"] == "manual"
    charge = make_charge(call, amount=pi["amount"], currency=pi["currency"], method=pm,
                         customer=pi["customer"], capture=not manual, payment_intent=pi["id"],
                         description=pi["description"], metadata=pi["metadata"],
                         receipt_email=pi["receipt_email"],
                         statement_descriptor=pi["statement_descriptor"])
    pi["latest_charge"] = charge["id"]
    pi["next_action"] = None
    if charge["status"] == "failed":
        assert card is not None
        error = decline_error(call, card, charge=charge["id"], payment_method=pm)
        pi.update(status="requires_payment_method", payment_method=None,
                  last_payment_error={k: v for k, v in error.body()["error"].items()
                                      if k != "request_log_url"})
        call.save(pi)
        call.event("payment_intent.payment_failed", pi)
        error.extra["payment_intent"] = pi
        return call.respond(402, error.body())
    pi["last_payment_error"] = None
    if manual:
        pi.update(status="requires_capture", amount_capturable=pi["amount"])
    else:
        pi.update(status="succeeded", amount_received=pi["amount"])
    if pi["setup_future_usage"] and pi["customer"] and not pm["customer"]:
        attach_to(call, pm["id"], pi["customer"], param="payment_method")
    call.save(pi)
    call.event("payment_intent.amount_capturable_updated" if manual
               else "payment_intent.succeeded", pi)
    return pi


@endpoint
def create_payment_intent(call: Call) -> Any:
    p = call.params
    amount = p.int("amount", required=True) or 0
    currency = (p.str("currency", required=True) or "").lower()
    pi = new_payment_intent(call, amount=amount, currency=currency, customer=None)
    _apply(call, pi)
    call.save(pi)
    call.event("payment_intent.created", pi)
    if p.bool("confirm"):
        return confirm(call, pi)
    return pi


retrieve_payment_intent = retrieve("payment_intent")


update_payment_intent = update("payment_intent", _apply)


@endpoint
def confirm_payment_intent(call: Call) -> Any:
    pi = call.get("payment_intent", call.capture("id"))
    p = call.params
    if p.has("payment_method"):
        pm_id = p.str("payment_method", required=True) or ""
        pi["payment_method"] = resolve(call, pm_id)["id"]
    if p.has("receipt_email"):
        pi["receipt_email"] = p.str("receipt_email")
    if p.has("setup_future_usage"):
        pi["setup_future_usage"] = p.enum("setup_future_usage", ("off_session", "on_session"))
    return confirm(call, pi)


@endpoint
def capture_payment_intent(call: Call) -> dict[str, Any]:
    pi = call.get("payment_intent", call.capture("id"))
    if pi["status"] != "requires_capture":
        raise unexpected_state(_STATE, "This PaymentIntent could not be captured because it "
                               f"has a status of {pi['status']}. Only a PaymentIntent with one "
                               "of the following statuses may be captured: requires_capture.",
                               payment_intent=pi)
    amount = call.params.int("amount_to_capture", default=pi["amount_capturable"], minimum=1)
    assert amount is not None
    if amount > pi["amount_capturable"]:
        raise StripeError(400, f"The amount to capture ({amount}) must be less than or equal "
                          f"to the amount capturable ({pi['amount_capturable']}).",
                          code="amount_too_large", param="amount_to_capture")
    pi["metadata"] = call.params.metadata(pi["metadata"])
    capture_charge_amount(call, call.get("charge", pi["latest_charge"]), amount)
    pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
    call.save(pi)
    call.event("payment_intent.succeeded", pi)
    return pi


@endpoint
def cancel_payment_intent(call: Call) -> dict[str, Any]:
    pi = call.get("payment_intent", call.capture("id"))
    if pi["status"] not in CANCELABLE:
        raise unexpected_state(_STATE, "You cannot cancel this PaymentIntent because it has a "
                               f"status of {pi['status']}. Only a PaymentIntent with one of the "
                               "following statuses may be canceled: " + ", ".join(CANCELABLE)
                               + ".", payment_intent=pi)
    reason = call.params.enum("cancellation_reason", ("abandoned", "duplicate", "fraudulent",
                                                      "requested_by_customer"))
    if pi["status"] == "requires_capture":  # the authorization is released
        refund_charge(call, call.get("charge", pi["latest_charge"]), None)
    pi.update(status="canceled", canceled_at=call.now, cancellation_reason=reason,
              amount_capturable=0, next_action=None)
    call.save(pi)
    call.event("payment_intent.canceled", pi)
    return pi


list_payment_intents = list_all("payment_intent", filters={"customer": "customer"})