"""One Stripe API call: the request's parameters, the sandbox's Stripe objects, and what
the call causes (events, webhook deliveries).

Every endpoint takes a :class:`Call` (see :func:`guard.providers.stripe.api.endpoint`);
the helpers around it (lists, expand, idempotency, webhooks) read it, and nothing here
imports them back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from guard.providers.stripe.errors import no_such
from guard.providers.stripe.kinds import KINDS, Kind
from guard.providers.stripe.openworld import referenced_price
from guard.providers.stripe.params import Params
from guard.request import Response
from guard.synth.context import SimContext
from guard.world.store import dumps

API_VERSION = "2026-10-28.endive"  # the version the stripe SDKs we test with pin


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
        if obj is None and id and object_name == "price":  # the account's own prices
            obj = referenced_price(self.world, self.ctx.options, id, self.now)
        if obj is None or (obj.get("deleted") and not deleted):
            raise no_such(k.noun, id or "", param)
        return obj

    def save(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.world.put(KINDS[obj["object"]].collection, obj)

    def all(self, object_name: str) -> list[dict[str, Any]]:
        """Every live object of a type, oldest first."""
        return [o for o in self.world.list(KINDS[object_name].collection)
                if not o.get("deleted")]

    def each(self, object_name: str, *, reverse: bool = False) -> Iterator[dict[str, Any]]:
        """:meth:`all` one at a time (newest first with ``reverse``): a loop that keeps few
        of a big collection's objects holds few (none of it may write that collection)."""
        for o in self.world.scan(KINDS[object_name].collection, reverse=reverse):
            if not o.get("deleted"):
                yield o

    def kind(self, object_name: str) -> Kind:
        return KINDS[object_name]

    def event(self, type: str, obj: dict[str, Any],
              previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record the event Stripe sends for this change, and queue its delivery to every
        enabled webhook endpoint whose ``enabled_events`` match."""
        endpoints = [e for e in self.each("webhook_endpoint") if e["status"] == "enabled"
                     and ("*" in e["enabled_events"] or type in e["enabled_events"])]
        # a copy, as the world stores it (JSON); faster than copy.deepcopy
        data: dict[str, Any] = {"object": json.loads(dumps(obj))}
        if previous:
            data["previous_attributes"] = previous
        event = self.save({
            "id": self.new_id("event"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.now,
            "data": data,
            "livemode": False,
            "pending_webhooks": len(endpoints),
            "request": {"id": self.request_id, "idempotency_key": self.idempotency_key},
            "type": type,
        })
        self.outbox.extend((event["id"], e["id"]) for e in endpoints)
        return event

    def respond(self, status: int, data: Any, extra: dict[str, str] | None = None) -> Response:
        headers = {"Request-Id": self.request_id, "Stripe-Version": self.api_version}
        if self.idempotency_key:
            headers["Idempotency-Key"] = self.idempotency_key
        headers.update(extra or {})
        return Response.json(status, data, headers.items())


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``previous_attributes``: the old values of the top-level fields that changed.

    >>> changed({"a": 1, "b": 2}, {"a": 1, "b": 3})
    {'b': 2}
    """
    return {k: v for k, v in before.items() if after.get(k) != v}
