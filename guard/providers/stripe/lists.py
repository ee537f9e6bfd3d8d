"""Stripe list pages: newest first, ``limit`` (1-100, default 10), ``starting_after`` /
``ending_before`` cursors, ``has_more``, ``url``, and the ``created`` range filter.

>>> newest_first = [{"id": f"o{i}"} for i in (4, 3, 2, 1, 0)]
>>> [o["id"] for o in page_of(newest_first, limit=2, after="o3")[0]]
['o2', 'o1']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

from guard.providers.stripe.errors import StripeError, invalid_param, no_such

if TYPE_CHECKING:
    from guard.providers.stripe.call import Call

Filter = Callable[[dict[str, Any]], bool]


def listing(call: Call, object_name: str, objects: Iterable[dict[str, Any]] | None = None,
            *, url: str | None = None, filters: dict[str, str] | None = None) -> dict[str, Any]:
    """A list page of ``objects`` (default: every live object of the type), filtered by the
    ``created`` range and by ``filters`` (parameter -> field that must equal it)."""
    kind = call.kind(object_name)
    p = call.params
    if objects is None and p.raw("created") in (None, "") and not any(
            p.raw(param) not in (None, "") for param in (filters or {})):
        return _streamed(call, object_name, url or kind.path)
    items = list(call.all(object_name) if objects is None else objects)
    for param, field in (filters or {}).items():
        want = p.str(param)
        if want is not None:
            items = [o for o in items if _text(_field(o, field)) == want]
    items = [o for o in items if created_matches(call, o)]
    # Newest first; among equal times, the later created (stored) first.
    items.sort(key=lambda o: o.get("created", 0))
    items.reverse()
    limit, after, before = _page_params(call)
    cursor = after or before
    if cursor is not None and not any(o["id"] == cursor for o in items):
        if call.find(object_name, cursor) is None:
            raise no_such(kind.noun, cursor, "starting_after" if after else "ending_before")
    data, more = page_of(items, limit=limit, after=after, before=before)
    return {"object": "list", "data": data, "has_more": more, "url": url or kind.path}


def _streamed(call: Call, object_name: str, url: str) -> dict[str, Any]:
    """A page read straight from the store, newest (most recently stored) first: about
    ``limit`` objects are read, not the collection, so a ``limit=1`` list over a world of
    50 MiB costs what it does over an empty one."""
    kind = call.kind(object_name)
    limit, after, before = _page_params(call)
    cursor = after or before
    if cursor is not None and call.find(object_name, cursor) is None:
        raise no_such(kind.noun, cursor, "starting_after" if after else "ending_before")
    live = (o for o in call.world.scan(kind.collection, after=cursor,
                                       reverse=before is None) if not o.get("deleted"))
    taken = list(islice(live, limit + 1))
    data = taken[:limit]
    if before is not None:
        data.reverse()  # read oldest first from the cursor: the page is newest first
    return {"object": "list", "data": data, "has_more": len(taken) > limit, "url": url}


def _page_params(call: Call) -> tuple[int, str | None, str | None]:
    """``limit`` (1-100, default 10) and at most one of the two cursors, as Stripe checks them."""
    p = call.params
    limit = p.int("limit", default=10, minimum=1)
    assert limit is not None
    if limit > 100:
        raise invalid_param("limit", "This value must be less than or equal to 100.",
                            "parameter_invalid_integer")
    after, before = p.str("starting_after"), p.str("ending_before")
    if after and before:
        raise StripeError(400, "You may only specify one of these parameters: "
                          "ending_before, starting_after.")
    return limit, after, before


def page_of(items: list[dict[str, Any]], *, limit: int, after: str | None = None,
            before: str | None = None) -> tuple[list[dict[str, Any]], bool]:
    ids = [o["id"] for o in items]
    if after is not None:
        start = ids.index(after) + 1 if after in ids else len(ids)
        rest = items[start:]
        return rest[:limit], len(rest) > limit
    if before is not None:
        end = ids.index(before) if before in ids else 0
        head = items[:end]
        return head[-limit:], len(head) > limit
    return items[:limit], len(items) > limit


def created_matches(call: Call, obj: dict[str, Any]) -> bool:
    spec = call.params.raw("created")
    if spec is None or spec == "":
        return True
    created = int(obj.get("created", 0))
    if isinstance(spec, str):
        return created == _int("created", spec)
    if not isinstance(spec, dict):
        raise invalid_param("created", "Invalid timestamp")
    checks = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__,
              "lte": created.__le__}
    for op, value in spec.items():
        if op not in checks:
            raise StripeError(400, f"Received unknown parameter: created[{op}]",
                              code="parameter_unknown", param=f"created[{op}]")
        if not checks[op](_int(f"created[{op}]", value)):
            return False
    return True


def _int(name: str, value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return int(value)
    raise invalid_param(name, f"Invalid integer: {value}", "parameter_invalid_integer")


def _text(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _field(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):  # an expanded reference compares by its id
        return node.get("id")
    return node
