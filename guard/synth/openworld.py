"""Open-world references: what exists in a sandbox before the agent names it.

An agent is configured with things that live outside its doing: a Slack channel id, a
GitHub repository, the Twilio number it sends from, a SendGrid sender, a Mailgun domain,
a price in the company's Stripe account. One rule, for every provider:

- **containers and configuration the agent names** exist on first reference, with
  realistic attributes, and are kept (the next call finds the same object);
- **objects the agent itself creates** (messages, issues, customers, payment intents)
  answer the provider's not-found when unknown;
- **a strict world** turns the first rule off: only what the world holds exists, so a
  misconfigured id fails as it would against the real account.

A world is strict when guard runs with ``--strict-world`` (option :data:`OPTION`), when
its sandbox's policy says ``strict_world: true``, or when the world itself holds
``{"id": "settings", "strict": true}`` in collection :data:`SETTINGS` (a ``--world``
seed or a control-plane snapshot pins it, together with the objects that do exist).

>>> from guard.world.memory import MemoryStore
>>> w = MemoryStore(seed=1).world("a")
>>> strict(w, {}), strict(w, {OPTION: True})
(False, True)
>>> with w.transaction():
...     _ = w.put(SETTINGS, {"id": "settings", "strict": True})
>>> strict(w, {})
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guard.world.store import World

SETTINGS = "guard.world"
OPTION = "strict_world"


def strict(world: World, options: Mapping[str, Any]) -> bool:
    """Whether only what ``world`` holds exists (no object is made on first reference)."""
    if options.get(OPTION) is True:
        return True
    settings = world.get(SETTINGS, "settings")
    return settings is not None and settings.get("strict") is True


def referenced(world: World, options: Mapping[str, Any], collection: str, key: str,
               make: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """The object kept under ``key``, else (open world) ``make()`` kept under ``key``, else
    (strict world) None. ``make`` draws from the world's seeded streams, so ``--seed``
    gives the same attributes every run."""
    found = world.get(collection, key)
    if found is not None or strict(world, options):
        return found
    return world.put(collection, make(), key)
