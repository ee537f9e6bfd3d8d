"""Sandboxes as first-class objects: identity (proven by a token), policy, registry.

No mitmproxy here: the proxy's identity step and the admin API both use these.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from guard.sandbox.identity import Identity, identify
from guard.sandbox.model import DEFAULT_POLICY, Policy, Sandbox, check_id, valid_id
from guard.sandbox.registry import Registry

if TYPE_CHECKING:
    from guard.world.store import WorldStore

__all__ = ["DEFAULT_POLICY", "Identity", "Policy", "Registry", "Sandbox", "check_id",
           "identify", "open_registry", "valid_id"]


def open_registry(worlds: WorldStore, key: bytes | None, path: Path | None) -> Registry:
    """The registry that goes with the world store ``worlds``: in Redis beside the worlds
    when they are there (every replica sees one set of sandboxes), else in this process
    (kept in ``path``, ``--state DIR/sandboxes.json``, when given)."""
    from guard.world.redis import RedisStore

    if isinstance(worlds, RedisStore):
        from guard.sandbox.shared import SharedRegistry

        return SharedRegistry(worlds, key=key)
    return Registry(key=key, path=path)
