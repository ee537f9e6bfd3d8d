"""The wrapper every Stripe handler runs in (:func:`endpoint`).

It does what Stripe does around every endpoint: check the API key (here and only
here, see :func:`authenticate`), replay or refuse a reused ``Idempotency-Key``, run the
endpoint, expand ``expand[]`` paths in the answer, turn a :class:`StripeError` into
Stripe's error body (undoing the endpoint's changes), add ``Request-Id``, and queue
webhook deliveries for the events the call caused.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any

from guard.providers.stripe import idempotency, webhooks
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import (
    StripeError,
    invalid_api_key,
    no_api_key,
    unrecognized,
)
from guard.providers.stripe.expand import expand
from guard.request import Response
from guard.synth.context import SimContext
from guard.synth.handlers import handler

_TEST_KEY = re.compile(r"^(sk|rk)_test_\S+$")

Result = dict[str, Any] | Response


METER_EVENTS = "meter-events.stripe.com"
FILES = "files.stripe.com"  # uploads and a quote's PDF (the SDK's "files" base address)
SESSIONS = "stripe.meter_event_session_tokens"  # hashes of the tokens sessions gave out


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def endpoint(fn: Callable[[Call], Result], *, meter_events: bool = False,
             files: bool = False) -> Callable[[SimContext], Response]:
    """Make ``fn(call) -> object | Response`` a handler rules can name. ``meter_events``:
    it answers on Stripe's meter-events host (the v2 meter event stream), and only there.
    ``files``: it answers on files.stripe.com too (a file upload, a quote's PDF; also on
    api.stripe.com, as stripe-mock serves every host at once). Every other endpoint answers
    only on api.stripe.com."""

    @functools.wraps(fn)
    def run(ctx: SimContext) -> Response:
        call = Call(ctx)
        try:
            host = call.request.host.lower()
            if (host == METER_EVENTS) != meter_events or host == FILES and not files:
                raise unrecognized(call.request.method, call.request.path)
            authenticate(call, session_token=meter_events)
            connected_account(call)
            replay = idempotency.replay(call)
            if replay is not None:
                return replay
            with call.world.savepoint():
                result = fn(call)
                if not isinstance(result, Response):
                    result = call.respond(200, expand(call, result))
        except StripeError as e:
            call.outbox.clear()
            result = call.respond(e.status, e.body())
        idempotency.remember(call, result)
        webhooks.schedule(call)
        return result

    return handler(run)


_ACCOUNT = re.compile(r"acct_[A-Za-z0-9]{1,64}")


def connected_account(call: Call) -> None:
    """``Stripe-Account`` must name an account; guard then works in that account's own
    world (the pack's ``world_by_header``), as Connect does."""
    value = call.request.header("stripe-account")
    if value is not None and not _ACCOUNT.fullmatch(value):
        shown = "".join(c if c.isprintable() else "?" for c in value[:80])
        raise StripeError(403, "The provided key does not have access to account "
                          f"'{shown}' (or that account does not exist). Application access "
                          "may have been revoked.", type="invalid_request_error",
                          code="account_invalid")


def authenticate(call: Call, *, session_token: bool = False) -> None:
    """Stripe takes the secret key as Bearer, or as a Basic user name (``curl -u sk_..:``).
    ``session_token``: the meter event stream, which takes the ``authentication_token`` of
    a meter event session this sandbox made as Bearer (live keys are blocked by the pack's
    rule before any handler)."""
    value = (call.request.header("authorization") or "").strip()
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() == "basic" and token:
        try:
            token = base64.b64decode(token, validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            token = ""
    elif scheme.lower() != "bearer":
        token = ""
    if not token:
        raise no_api_key()
    if session_token:
        if call.world.get(SESSIONS, session_key(token)) is None:
            raise invalid_api_key(token)
        return
    if not _TEST_KEY.match(token):
        raise invalid_api_key(token)

