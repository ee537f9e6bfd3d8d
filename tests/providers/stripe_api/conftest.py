"""Fixtures for the Stripe tests: the official SDK pointed at a real guard proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import stripe

from guard.proxy.embedded import RunningGuard
from tests.sandboxes import proxy_url


@pytest.fixture(autouse=True)
def restore_ca_bundle() -> Iterator[None]:
    saved = stripe.ca_bundle_path
    yield
    stripe.ca_bundle_path = saved


def sdk(g: RunningGuard, sandbox: str | None = None, key: str = "sk_test_guard"
        ) -> stripe.StripeClient:
    """A StripeClient whose every call goes through guard. ``sandbox`` names the sandbox as
    the proxy user, proven by its token (guard must run with ``sandbox_from="proxy-user"``)."""
    proxy = g.url if sandbox is None else proxy_url(g.url, sandbox)
    stripe.ca_bundle_path = g.ca  # the SDK trusts only its own bundle unless told
    return stripe.StripeClient(key, http_client=stripe.RequestsClient(proxy=proxy),
                               max_network_retries=0)


@pytest.fixture
def stripe_guard(guard_proxy: Callable[..., RunningGuard]
                 ) -> tuple[stripe.StripeClient, RunningGuard]:
    """The SDK and a guard with the built-in packs and a fixed seed."""
    g = guard_proxy(seed=7)
    return sdk(g), g
