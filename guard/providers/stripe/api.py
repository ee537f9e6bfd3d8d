"""One Stripe API call (:class:`Call`) and the wrapper every Stripe handler runs in.

The wrapper (:func:`endpoint`) does what Stripe does around every endpoint: check the
API key, replay or refuse a reused ``Idempotency-Key``, run the endpoint, expand
``expand[]`` paths in the answer, turn a :class:`StripeError` into Stripe's error body
(undoing the endpoint's changes), add ``Request-Id``, and queue webhook deliveries for
the events the call caused.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable
from typing import Any

from guard.providers.stripe import idempotency, webhooks
from guard.providers.stripe.errors import StripeError, invalid_api_key, no_api_key, no_such
from guard.providers.stripe.expand import expand
from guard.providers.stripe.kinds import KINDS, Kind
from guard.providers.stripe.params import Params
from guard.request import Response
from guard.synth.context import SimContext
from guard.synth.handlers import handler

API_VERSION = "2026-10-28.endive"  # the version the stripe SDKs we test with pin
_TEST_KEY = re.compile(r"^(sk|rk)_test_\S+$")

Result = dict[str, Any] | Response


class Call:
    """The request's parameters, the sandbox's Stripe objects, and what the call causes."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.world = ctx.world
        self.request = ctx.request
        source = ctx.request.form if ctx.request.method == "POST" else ctx.request.query_map
        self.params = Params(source)
        self.request_id = "req_" + ctx.world.ids.base62(14)
        self.idempotency_key = ctx.request.header("idempotency-key")
        self.api_version = ctx.request.header("stripe-version") or API_VERSION
        self.outbox: list[tuple[str, str]] = []  # (event id, webhook endpoint id)

    @property
    def now(self) -> int:
        return self.ctx.now

    def capture(self, name: str) -> str:
        return self.ctx.captures[name]

    def new_id(self, object_name: str) -> str:
        k = KINDS[object_name]
        return f"{k.prefix}_{self.world.ids.base62(k.id_length)}"

    def find(self, object_name: str, id: str) -> dict[str, Any] | None:
        return self.world.get(KINDS[object_name].collection, id)

    def get(self, object_name: str, id: str | None, *, param: str = "id",
            deleted: bool = False) -> dict[str, Any]:
        """The object, or Stripe's 404 ``No such <noun>``. Deleted objects count as missing
        unless ``deleted`` (Stripe still answers a retrieve of a deleted customer)."""
        k = KINDS[object_name]
        obj = self.world.get(k.collection, id) if id else None
        if obj is None or (obj.get("deleted") and not deleted):
            raise no_such(k.noun, id or "", param)
        return obj

    def save(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.world.put(KINDS[obj["object"]].collection, obj)

    def all(self, object_name: str) -> list[dict[str, Any]]:
        """Every live object of a type, oldest first."""
        return [o for o in self.world.list(KINDS[object_name].collection)
                if not o.get("deleted")]

    def kind(self, object_name: str) -> Kind:
        return KINDS[object_name]

    def event(self, type: str, obj: dict[str, Any],
              previous: dict[str, Any] | None = None) -> None:
        """Record the event Stripe sends for this change (and queue its webhooks)."""
        from guard.providers.stripe.events import emit

        emit(self, type, obj, previous)

    def respond(self, status: int, data: Any, extra: dict[str, str] | None = None) -> Response:
        headers = {"Request-Id": self.request_id, "Stripe-Version": self.api_version}
        if self.idempotency_key:
            headers["Idempotency-Key"] = self.idempotency_key
        headers.update(extra or {})
        return Response.json(status, data, headers.items())


def endpoint(fn: Callable[[Call], Result]) -> Callable[[SimContext], Response]:
    """Make ``fn(call) -> object | Response`` a handler rules can name."""

    @functools.wraps(fn)
    def run(ctx: SimContext) -> Response:
        call = Call(ctx)
        try:
            authenticate(call)
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


def authenticate(call: Call) -> None:
    """Stripe takes the secret key as Bearer, or as a Basic user name (``curl -u sk_..:``)."""
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
    if not _TEST_KEY.match(token):
        raise invalid_api_key(token)


def dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
