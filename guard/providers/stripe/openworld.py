"""Stripe's open world: prices of the real account.

An agent is configured with the price ids of the company's Stripe account
(``STRIPE_PRICE_PRO=price_1Nx...``) and never creates them, so a price id shaped like
Stripe's (:data:`PRICE_ID`) that the sandbox does not hold is, on first reference, a price
of the account: an active monthly price in USD of a product of its own, both made now and
kept (retrieve, list, subscribe, invoice, check out with it). No event is recorded: the
price was there before. Everything the agent creates (customers, payment intents,
subscriptions, ...) answers ``resource_missing`` when unknown, and in a strict world
(:mod:`guard.synth.openworld`) so does a price: seed it (``--world``) instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from guard.providers.stripe.kinds import KINDS
from guard.synth import openworld

if TYPE_CHECKING:
    from guard.world.store import World

# Shaped like Stripe's own ids (``price_1PgafmB7WZ01zgkW``): 14 or more letters and digits
# with a digit among them, so a made-up ``price_missing`` is still not-found.
PRICE_ID = re.compile(r"price_(?=[A-Za-z]*[0-9])[A-Za-z0-9]{14,64}")
AMOUNTS = (900, 1500, 1900, 2900, 4900, 9900, 19900)
TIERS = ("Starter", "Basic", "Pro", "Team", "Business", "Premium")


def referenced_price(world: World, options: Mapping[str, Any], price_id: str,
                     now: int) -> dict[str, Any] | None:
    """The account's price ``price_id`` made on first reference (with its product), or
    None when the id is not shaped like Stripe's or the world is strict.

    >>> bool(PRICE_ID.fullmatch("price_1PgafmB7WZ01zgkW")), bool(PRICE_ID.fullmatch(
    ...     "price_missing")), bool(PRICE_ID.fullmatch("price_xxxxxxxxxxxxxxxx"))
    (True, False, False)
    """
    if not PRICE_ID.fullmatch(price_id) or openworld.strict(world, options):
        return None
    rng, faker = world.rng, world.faker
    created = now - 86_400 * rng.randint(30, 700)
    product_id = f"prod_{world.ids.base62(KINDS['product'].id_length)}"
    product = {
        "id": product_id, "object": "product", "active": True, "created": created,
        "default_price": price_id, "description": None, "images": [], "livemode": False,
        "marketing_features": [], "metadata": {},
        "name": f"{faker.word().title()} {rng.choice(TIERS)}", "package_dimensions": None,
        "shippable": None, "statement_descriptor": None, "tax_code": None,
        "type": "service", "unit_label": None, "updated": created, "url": None,
    }
    amount = rng.choice(AMOUNTS)
    price = {
        "id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit",
        "created": created, "currency": "usd", "custom_unit_amount": None,
        "livemode": False, "lookup_key": None, "metadata": {}, "nickname": None,
        "product": product_id,
        "recurring": {"interval": "month", "interval_count": 1, "meter": None,
                      "trial_period_days": None, "usage_type": "licensed"},
        "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
        "type": "recurring", "unit_amount": amount, "unit_amount_decimal": str(amount),
    }
    world.put(KINDS["product"].collection, product)
    return world.put(KINDS["price"].collection, price)
