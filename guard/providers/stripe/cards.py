"""Stripe's test cards: ``pm_card_*`` payment methods, ``tok_*`` tokens and card numbers,
with the outcome Stripe's test mode gives each (success, a decline with its ``code`` and
``decline_code``, or 3-D Secure).

>>> card = by_test_id("pm_card_chargeDeclinedInsufficientFunds")
>>> card.last4, card.decline.decline_code
('9995', 'insufficient_funds')
>>> by_test_id("tok_visa").brand, by_number("5555 5555 5555 4444").brand
('visa', 'mastercard')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from guard.ids import BASE62


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str
    on_attach: bool = True  # Stripe also refuses to attach the card to a customer


@dataclass(frozen=True)
class Card:
    name: str  # pm_card_<name>, tok_<name>
    number: str
    brand: str  # payment-method spelling: visa, mastercard, amex, ...
    funding: str = "credit"
    country: str = "US"
    decline: Decline | None = None
    authentication: bool = False  # confirming needs 3-D Secure (requires_action)

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        """Stable per card number, as Stripe's fingerprints are per account."""
        digest = hashlib.sha256(f"guard-card:{self.number}".encode()).digest()
        return "".join(BASE62[b % 62] for b in digest[:16])

    @property
    def legacy_brand(self) -> str:
        return _LEGACY_BRAND.get(self.brand, self.brand.title())


_DECLINED = "Your card was declined."
_LEGACY_BRAND = {"visa": "Visa", "mastercard": "MasterCard", "amex": "American Express",
                 "discover": "Discover", "diners": "Diners Club", "jcb": "JCB",
                 "unionpay": "UnionPay"}

CARDS = (
    Card("visa", "4242424242424242", "visa"),
    Card("visa_debit", "4000056655665556", "visa", "debit"),
    Card("mastercard", "5555555555554444", "mastercard"),
    Card("mastercard_debit", "5200828282828210", "mastercard", "debit"),
    Card("mastercard_prepaid", "5105105105105100", "mastercard", "prepaid"),
    Card("amex", "378282246310005", "amex"),
    Card("discover", "6011111111111117", "discover"),
    Card("diners", "3056930009020004", "diners"),
    Card("jcb", "3566002020360505", "jcb", country="JP"),
    Card("unionpay", "6200000000000005", "unionpay", country="CN"),
    Card("bypassPending", "4000000000000077", "visa"),
    Card("chargeDeclined", "4000000000000002", "visa",
         decline=Decline("card_declined", "generic_decline", _DECLINED)),
    Card("chargeDeclinedInsufficientFunds", "4000000000009995", "visa",
         decline=Decline("card_declined", "insufficient_funds",
                         "Your card has insufficient funds.")),
    Card("chargeDeclinedLostCard", "4000000000009987", "visa",
         decline=Decline("card_declined", "lost_card", _DECLINED)),
    Card("chargeDeclinedStolenCard", "4000000000009979", "visa",
         decline=Decline("card_declined", "stolen_card", _DECLINED)),
    Card("chargeDeclinedExpiredCard", "4000000000000069", "visa",
         decline=Decline("expired_card", "expired_card", "Your card has expired.")),
    Card("chargeDeclinedIncorrectCvc", "4000000000000127", "visa",
         decline=Decline("incorrect_cvc", "incorrect_cvc",
                         "Your card's security code is incorrect.")),
    Card("chargeDeclinedProcessingError", "4000000000000119", "visa",
         decline=Decline("processing_error", "processing_error",
                         "An error occurred while processing your card. Try again in a "
                         "little bit.")),
    Card("chargeDeclinedFraudulent", "4100000000000019", "visa",
         decline=Decline("card_declined", "fraudulent", _DECLINED)),
    Card("chargeDeclinedVelocityLimitExceeded", "4000000000006975", "visa",
         decline=Decline("card_declined", "card_velocity_exceeded",
                         "Your card was declined for making repeated attempts too "
                         "frequently or exceeding its amount limit.")),
    Card("chargeCustomerFail", "4000000000000341", "visa",
         decline=Decline("card_declined", "generic_decline", _DECLINED, on_attach=False)),
    Card("authenticationRequired", "4000002500003155", "visa", authentication=True),
    Card("threeDSecure2Required", "4000000000003220", "visa", authentication=True),
)

_BY_NAME = {c.name: c for c in CARDS}
_BY_NUMBER = {c.number: c for c in CARDS}
_BY_FINGERPRINT = {c.fingerprint: c for c in CARDS}


def by_test_id(test_id: str) -> Card | None:
    """``pm_card_visa`` or ``tok_visa`` -> the card; anything else -> None."""
    for prefix in ("pm_card_", "tok_"):
        if test_id.startswith(prefix):
            return _BY_NAME.get(test_id[len(prefix):])
    return None


def by_number(number: str) -> Card | None:
    return _BY_NUMBER.get(number.replace(" ", "").replace("-", ""))


def by_fingerprint(fingerprint: str | None) -> Card | None:
    return _BY_FINGERPRINT.get(fingerprint or "")


def of_card(card: Any) -> Card | None:
    """The test card a card object is: by guard's fingerprint, else (a card in a seeded
    world, copied from Stripe, with Stripe's fingerprint) the first test card of that brand
    and last4 that is not a decline, so Stripe's example token (Visa 4242) charges.

    >>> of_card({"fingerprint": "AOB934RVNwzk6xtn", "brand": "Visa", "last4": "4242"}).name
    'visa'
    >>> of_card({"brand": "Visa", "last4": "0000"}) is None
    True
    """
    if not isinstance(card, dict):
        return None
    found = by_fingerprint(card.get("fingerprint"))
    if found is not None:
        return found
    brand, last4 = str(card.get("brand", "")).lower(), card.get("last4")
    return next((c for c in CARDS if c.last4 == last4 and c.decline is None and
                 brand in (c.brand, c.legacy_brand.lower())), None)


def expiry(now: int) -> tuple[int, int]:
    """Test cards expire in the current month, a year on (as Stripe's test ids do)."""
    t = datetime.fromtimestamp(now, UTC)
    return t.month, t.year + 1


def pm_card(card: Card, exp: tuple[int, int]) -> dict[str, Any]:
    """The ``card`` hash of a PaymentMethod."""
    return {
        "brand": card.brand,
        "checks": {"address_line1_check": None, "address_postal_code_check": None,
                   "cvc_check": "pass"},
        "country": card.country,
        "display_brand": card.brand,
        "exp_month": exp[0],
        "exp_year": exp[1],
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def legacy_card(card: Card, id: str, exp: tuple[int, int], customer: str | None = None
                ) -> dict[str, Any]:
    """A ``card`` object (a token's card, or a customer's source)."""
    return {
        "id": id,
        "object": "card",
        "address_city": None, "address_country": None, "address_line1": None,
        "address_line1_check": None, "address_line2": None, "address_state": None,
        "address_zip": None, "address_zip_check": None,
        "brand": card.legacy_brand,
        "country": card.country,
        "customer": customer,
        "cvc_check": "pass",
        "dynamic_last4": None,
        "exp_month": exp[0],
        "exp_year": exp[1],
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "last4": card.last4,
        "metadata": {},
        "name": None,
        "regulated_status": "unregulated",
        "tokenization_method": None,
    }
