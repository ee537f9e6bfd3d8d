"""Which sandbox a request belongs to, proven, never claimed (issue 11 section 5).

``--sandbox-from`` picks where the proof is:

- ``client`` (default): the client's address names the sandbox, unless an address is
  bound to a sandbox created through the admin API (``client_address``);
- ``header``: ``X-Guard-Sandbox: <token>``;
- ``proxy-user``: proxy credentials ``SANDBOX:TOKEN`` (``http://SANDBOX:TOKEN@host:port``,
  the form requests, httpx, curl, urllib, boto3 and the stripe SDK all send; ``TOKEN:``
  with an empty password works too).

In ``header`` and ``proxy-user`` modes a request must carry a valid token (issued when
the sandbox was created, or derived from the guard key) or come from a bound address.
A mode never falls back to the client address: a request without proof is refused
(rule ``guard.sandbox-missing``), a claim with a wrong, truncated, forged or deleted
sandbox's token too (``guard.sandbox-unproven``). Credentials in any other place (another
header, the other mode's carrier) prove nothing.

>>> from guard.sandbox.registry import Registry
>>> reg = Registry()
>>> _, token = reg.create("agent-7")
>>> identify("header", reg, client="10.0.0.9", header=token).sandbox
'agent-7'
>>> identify("header", reg, client="10.0.0.9", header="agent-7").rule
'guard.sandbox-unproven'
>>> identify("proxy-user", reg, client="10.0.0.9").rule
'guard.sandbox-missing'
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace

from guard.sandbox import tokens
from guard.sandbox.model import Sandbox
from guard.sandbox.registry import Registry

MODES = ("client", "header", "proxy-user")
HEADER = "x-guard-sandbox"
MISSING_RULE = "guard.sandbox-missing"
UNPROVEN_RULE = "guard.sandbox-unproven"
_SHOW = 64  # characters of a claim shown in a refusal (the audit log escapes the rest)


@dataclass(frozen=True)
class Identity:
    """The proven sandbox (``sandbox``) or a refusal (``rule`` and ``reason``)."""

    sandbox: str | None
    via: str  # address | binding | token | - (refused)
    rule: str | None = None
    reason: str = ""
    # the proven sandbox's registration, read from the same version of the registry as
    # the proof (None: not registered); ``looked_up`` says it was read
    registered: Sandbox | None = field(default=None, compare=False, repr=False)
    looked_up: bool = field(default=False, compare=False, repr=False)

    @property
    def refused(self) -> bool:
        return self.sandbox is None


def identify(mode: str, registry: Registry, *, client: str, header: str | None = None,
             proxy_auth: str | None = None) -> Identity:
    """Decide the sandbox of one request. ``header`` is the X-Guard-Sandbox value,
    ``proxy_auth`` the Proxy-Authorization value (of the request or its CONNECT). A
    proven sandbox comes with its registration, from the same read of the registry."""
    view = registry.view()
    found = _identify(mode, view, client=client, header=header, proxy_auth=proxy_auth)
    if found.sandbox is None:
        return found
    return replace(found, registered=view.get(found.sandbox), looked_up=True)


def _identify(mode: str, registry: Registry, *, client: str, header: str | None,
              proxy_auth: str | None) -> Identity:
    if mode == "client":
        bound = registry.by_address(client)
        if bound is not None:
            return Identity(bound, "binding")
        return Identity(client or "default", "address")
    if mode == "header":
        return _prove(registry, client, header, "the X-Guard-Sandbox header", header)
    if mode == "proxy-user":
        user, password = proxy_credentials(proxy_auth)
        if user is None and proxy_auth:
            return _refuse(UNPROVEN_RULE, "unreadable proxy credentials (expected Basic "
                           "SANDBOX:TOKEN)")
        if user is None:
            return _prove(registry, client, None, "proxy credentials", None)
        if password:
            token, claim = password, user
        elif user.startswith(tokens.PREFIX):
            token, claim = user, None
        else:
            token, claim = None, user
        found = _prove(registry, client, token, "proxy credentials", claim)
        if found.sandbox is not None and password and user and user != found.sandbox:
            return _refuse(UNPROVEN_RULE, f"proxy user {_shown(user)} does not match the "
                           "sandbox its token proves")
        return found
    raise ValueError(f"unknown sandbox mode {mode!r} (expected one of {', '.join(MODES)})")


def _prove(registry: Registry, client: str, token: str | None, where: str,
           claim: str | None) -> Identity:
    if token:
        proven = registry.by_token(token)
        if proven is not None:
            return Identity(proven, "token")
        what = "a sandbox token" if token.startswith(tokens.PREFIX) else "a value that is no token"
        return _refuse(UNPROVEN_RULE, f"{where} carry {what} that proves no sandbox "
                       f"(claimed: {_shown(claim) if claim else 'none'}): wrong, truncated, "
                       "forged, or of a deleted sandbox")
    bound = registry.by_address(client)
    if bound is not None:
        return Identity(bound, "binding")
    if claim:
        return _refuse(UNPROVEN_RULE, f"sandbox {_shown(claim)} claimed in {where} without "
                       "its token")
    return _refuse(MISSING_RULE, f"this guard names sandboxes by {where} with a token, and "
                   "the request has none (it never falls back to the client address)")


def _refuse(rule: str, reason: str) -> Identity:
    return Identity(None, "-", rule, reason)


def _shown(value: str) -> str:
    return repr(value[:_SHOW] + ("..." if len(value) > _SHOW else ""))


def proxy_credentials(value: str | None) -> tuple[str | None, str]:
    """(user, password) of a ``Basic`` Proxy-Authorization value; (None, "") if none."""
    if not value:
        return None, ""
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > 1024:
        return None, ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, ""
    user, _, password = decoded.partition(":")
    return user, password
