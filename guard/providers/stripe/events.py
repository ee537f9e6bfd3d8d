"""Events (``/v1/events``) and webhook endpoints (``/v1/webhook_endpoints``).

Every state change a handler makes records the event Stripe would send (``call.event``,
:mod:`guard.providers.stripe.call`); each enabled endpoint whose ``enabled_events``
match gets it delivered (see :mod:`guard.providers.stripe.webhooks` for where guard may
deliver).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import invalid_param, missing_param
from guard.providers.stripe.resource import delete, list_all, retrieve, update

_EVENT_NAME = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")


def _of_types(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``types[]`` and ``type`` (``customer.*`` matches a prefix)."""
    types = call.params.strings("types")
    if types:
        items = [e for e in items if e["type"] in types]
    wanted = call.params.str("type")
    if wanted and "*" in wanted:
        prefix = wanted.split("*")[0]
        items = [e for e in items if e["type"].startswith(prefix)]
    elif wanted:
        items = [e for e in items if e["type"] == wanted]
    return items


list_events = list_all("event", select=_of_types)


retrieve_event = retrieve("event")


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


def _shown(call: Call, we: dict[str, Any]) -> dict[str, Any]:
    return _public(we)


retrieve_webhook_endpoint = retrieve("webhook_endpoint", view=_shown)


def _webhook_fields(call: Call, we: dict[str, Any]) -> None:
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


update_webhook_endpoint = update("webhook_endpoint", _webhook_fields, emit="none", view=_shown)


delete_webhook_endpoint = delete("webhook_endpoint", emit=False)


list_webhook_endpoints = list_all("webhook_endpoint", view=_shown)