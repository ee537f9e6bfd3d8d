"""Sandboxes as first-class objects: identity (proven by a token), policy, registry.

No mitmproxy here: the proxy's identity step and the admin API both use these.
"""

from guard.sandbox.identity import Identity, identify
from guard.sandbox.model import DEFAULT_POLICY, Policy, Sandbox, check_id, valid_id
from guard.sandbox.registry import Registry

__all__ = ["DEFAULT_POLICY", "Identity", "Policy", "Registry", "Sandbox", "check_id",
           "identify", "valid_id"]
