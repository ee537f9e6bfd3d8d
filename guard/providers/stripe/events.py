"""Events (``/v1/events``) and webhook endpoints (``/v1/webhook_endpoints``).

Every state change a handler makes records the event Stripe would send
(:func:`emit`); each enabled endpoint whose ``enabled_events`` match gets it delivered
(see :mod:`guard.providers.stripe.webhooks` for where guard may deliver).
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

from guard.providers.stripe.api import Call, endpoint
from guard.providers.stripe.errors import invalid_param, missing_param
from guard.providers.stripe.lists import listing

_EVENT_NAME = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")


def emit(call: Call, type: str, obj: dict[str, Any],
         previous: dict[str, Any] | None = None) -> dict[str, Any]:
    endpoints = [e for e in call.all("webhook_endpoint") if e["status"] == "enabled"
                 and ("*" in e["enabled_events"] or type in e["enabled_events"])]
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous:
        data["previous_attributes"] = previous
    event = call.save({
        "id": call.new_id("event"),
        "object": "event",
        "api_version": call.api_version,
        "created": call.now,
        "data": data,
        "livemode": False,
        "pending_webhooks": len(endpoints),
        "request": {"id": call.request_id, "idempotency_key": call.idempotency_key},
        "type": type,
    })
    call.outbox.extend((event["id"], e["id"]) for e in endpoints)
    return event


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``previous_attributes``: the old values of the top-level fields that changed."""
    return {k: v for k, v in before.items() if after.get(k) != v}


@endpoint
def list_events(call: Call) -> dict[str, Any]:
    items = call.all("event")
    types = call.params.strings("types")
    if types:
        items = [e for e in items if e["type"] in types]
    wanted = call.params.str("type")
    if wanted and "*" in wanted:
        prefix = wanted.split("*")[0]
        items = [e for e in items if e["type"].startswith(prefix)]
    elif wanted:
        items = [e for e in items if e["type"] == wanted]
    return listing(call, "event", items)


@endpoint
def retrieve_event(call: Call) -> dict[str, Any]:
    return call.get("event", call.capture("id"))


def _public(we: dict[str, Any]) -> dict[str, Any]:
    """Stripe shows an endpoint's secret only in the create response."""
    return {k: v for k, v in we.items() if k != "secret"}


def _events_param(call: Call, required: bool) -> list[str] | None:
    events = call.params.strings("enabled_events")
    if events is None:
        if required:
            raise missing_param("enabled_events")
        return None
    if not events:
        raise invalid_param("enabled_events", "enabled_events must not be empty.")
    for i, name in enumerate(events):
        if not _EVENT_NAME.match(name):
            raise invalid_param(f"enabled_events[{i}]", f"Invalid enabled_events[{i}]: "
                                f"{name} is not an event type")
    return events


def _url_param(call: Call, required: bool) -> str | None:
    url = call.params.str("url", required=required)
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid_param("url", f"Invalid URL: {url}. URLs must begin with http:// "
                                "or https:// and name a host.", "url_invalid")
    return url


@endpoint
def create_webhook_endpoint(call: Call) -> dict[str, Any]:
    url = _url_param(call, True)
    events = _events_param(call, True)
    we = call.save({
        "id": call.new_id("webhook_endpoint"),
        "object": "webhook_endpoint",
        "api_version": call.params.str("api_version"),
        "application": None,
        "created": call.now,
        "description": call.params.str("description"),
        "enabled_events": events,
        "livemode": False,
        "metadata": call.params.metadata(),
        "secret": "whsec_" + call.world.ids.base62(32),
        "status": "enabled",
        "url": url,
    })
    return we


@endpoint
def retrieve_webhook_endpoint(call: Call) -> dict[str, Any]:
    return _public(call.get("webhook_endpoint", call.capture("id")))


@endpoint
def update_webhook_endpoint(call: Call) -> dict[str, Any]:
    we = call.get("webhook_endpoint", call.capture("id"))
    p = call.params
    url = _url_param(call, False)
    events = _events_param(call, False)
    if url is not None:
        we["url"] = url
    if events is not None:
        we["enabled_events"] = events
    if p.has("description"):
        we["description"] = p.str("description")
    disabled = p.bool("disabled")
    if disabled is not None:
        we["status"] = "disabled" if disabled else "enabled"
    we["metadata"] = p.metadata(we["metadata"])
    return _public(call.save(we))


@endpoint
def delete_webhook_endpoint(call: Call) -> dict[str, Any]:
    we = call.get("webhook_endpoint", call.capture("id"))
    return call.save({"id": we["id"], "object": "webhook_endpoint", "deleted": True})


@endpoint
def list_webhook_endpoints(call: Call) -> dict[str, Any]:
    return listing(call, "webhook_endpoint", [_public(w) for w in call.all("webhook_endpoint")])
