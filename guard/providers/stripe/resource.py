"""The endpoints most Stripe resources share, written once: retrieve, list, update and
delete by id. A resource module states only what differs (which fields an update
takes, what a delete must check first, how an object is shown)::

    retrieve_charge = retrieve("charge")
    list_charges = list_all("charge", filters={"customer": "customer"})
    update_charge = update("charge", _apply_charge_fields)

Each factory returns a handler (wrapped in :func:`~guard.providers.stripe.api.endpoint`,
so the API key, idempotency, ``expand[]`` and errors work as for any endpoint) that the
provider registers under the name it is bound to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from guard.providers.stripe.api import endpoint
from guard.providers.stripe.call import Call, changed
from guard.providers.stripe.lists import listing
from guard.synth.handlers import Handler

Object = dict[str, Any]
View = Callable[[Call, Object], Object]  # how a stored object is answered
Apply = Callable[[Call, Object], None]  # change an object from the call's parameters
Select = Callable[[Call, list[Object]], list[Object]]  # narrow a list by parameters
Emit = Literal["changes", "object", "if_changed", "none"]


def retrieve(object_name: str, *, view: View | None = None, deleted: bool = False) -> Handler:
    """``GET /v1/<objects>/{id}``: the object, or Stripe's 404 ``No such <noun>``
    (``deleted``: a deleted object is still answered, as Stripe does for customers)."""

    def retrieve(call: Call) -> Object:
        obj = call.get(object_name, call.capture("id"), deleted=deleted)
        return view(call, obj) if view is not None else obj

    return _named(endpoint(retrieve), "retrieve", object_name)


def list_all(object_name: str, *, filters: dict[str, str] | None = None,
             view: View | None = None, select: Select | None = None) -> Handler:
    """``GET /v1/<objects>``: a list page of every live object, newest first, narrowed by
    ``filters`` (parameter -> field that must equal it) and by ``select``."""

    def list_all(call: Call) -> Object:
        if view is None and select is None:
            return listing(call, object_name, filters=filters)
        items = call.all(object_name)
        if view is not None:
            items = [view(call, o) for o in items]
        if select is not None:
            items = select(call, items)
        return listing(call, object_name, items, filters=filters)

    return _named(endpoint(list_all), "list", object_name)


def update(object_name: str, apply: Apply, *, emit: Emit = "changes", event: str | None = None,
           view: View | None = None) -> Handler:
    """``POST /v1/<objects>/{id}``: ``apply`` changes a copy of the object, which is saved.

    ``emit`` says which event Stripe sends (``event``, default ``<object>.updated``):
    with the changed fields as ``previous_attributes`` (``changes``), without them
    (``object``), only when something changed (``if_changed``), or none (``none``).
    """
    event_type = event or f"{object_name}.updated"

    def update(call: Call) -> Object:
        before = call.get(object_name, call.capture("id"))
        obj = dict(before)
        apply(call, obj)
        saved = call.save(obj)
        diff = changed(before, obj)
        if emit == "changes" or (emit == "if_changed" and diff):
            call.event(event_type, obj, diff)
        elif emit == "object":
            call.event(event_type, obj)
        return view(call, saved) if view is not None else obj

    return _named(endpoint(update), "update", object_name)


def delete(object_name: str, *, first: Apply | None = None, emit: bool = True) -> Handler:
    """``DELETE /v1/<objects>/{id}``: ``first`` checks (raising Stripe's error) or undoes
    what depends on the object; the ``<object>.deleted`` event (unless ``emit`` is false);
    then the object becomes ``{"id", "object", "deleted": true}``."""

    def delete(call: Call) -> Object:
        obj = call.get(object_name, call.capture("id"))
        if first is not None:
            first(call, obj)
        if emit:
            call.event(f"{obj['object']}.deleted", obj)
        return call.save({"id": obj["id"], "object": obj["object"], "deleted": True})

    return _named(endpoint(delete), "delete", object_name)


def _named(fn: Handler, verb: str, object_name: str) -> Handler:
    """Say in tracebacks and reprs which endpoint a made handler is."""
    fn.__qualname__ = f"{verb}[{object_name}]"
    return fn
