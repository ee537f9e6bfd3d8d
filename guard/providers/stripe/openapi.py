"""Stripe's operations that no hand-written handler answers, from Stripe's OpenAPI
description (``rules/stripe/spec3.json.gz``, see guard/openapi/).

Each generated operation runs inside the same :func:`~.api.endpoint` wrapper as the
hand-written ones (API key, ``Idempotency-Key``, ``Request-Id``, errors undoing changes), so
an agent cannot tell which kind answered. ``expand[]`` follows the description's
``x-expansionResources``: a field holding an id becomes the object, found in the sandbox's
world or, for objects the agent cannot create, made on first reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guard.openapi.api import NotFound, OpenApi
from guard.openapi.schema import branches, merged, object_name
from guard.openapi.validate import Invalid, Issue
from guard.providers.stripe.api import Call, endpoint
from guard.providers.stripe.errors import StripeError, no_such, not_expandable
from guard.providers.stripe.expand import MAX_DEPTH

if TYPE_CHECKING:
    from guard.openapi.operations import Operation
    from guard.providers import Handler


def stripe_error(issue: Issue) -> StripeError:
    return StripeError(400, issue.message, code=issue.code, param=issue.param)


def wrap(api: OpenApi, op: Operation, answer: Handler) -> Handler:
    """The generated answer for ``op`` as a Stripe endpoint."""
    from guard.openapi.pack import template

    _, names = template(op.path)

    def run(call: Call) -> Any:
        captures = {names.get(k, k): v for k, v in call.ctx.captures.items()}
        try:
            validated = api.validate(op, call.request, captures)
            result = api.act(op, call.request, validated, call.world)
        except Invalid as e:
            raise stripe_error(e.issue) from None
        except NotFound as e:
            raise no_such(e.noun, e.id) from None
        data = result.data
        expand = validated.body.get("expand") if isinstance(validated.body, dict) else \
            validated.query.get("expand")
        if isinstance(data, dict) and isinstance(expand, list):
            for i, path in enumerate(expand):
                parts = str(path).split(".")
                if len(parts) > MAX_DEPTH:
                    raise StripeError(400, "You cannot expand more than 4 levels of a "
                                      "property.", param=f"expand[{i}]")
                _expand(api, call, data, op.schema, parts, f"expand[{i}]")
        if data is None:
            return call.respond(result.status, {})
        return call.respond(result.status, data)

    run.__name__ = f"openapi_{op.slug.replace('-', '_')}"
    return endpoint(run)


def _expand(api: OpenApi, call: Call, node: Any, schema: Any, parts: list[str],
            param: str) -> None:
    spec = api.spec
    if isinstance(node, list):
        items = merged(spec, schema).get("items")
        for item in node:
            _expand(api, call, item, items, parts, param)
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    sch = _object_branch(api, schema, node)
    props = merged(spec, sch).get("properties") or {}
    if head not in node or head not in props:
        raise not_expandable(head, param)
    field = spec.resolve(props[head])
    targets = _targets(api, field)
    value = node[head]
    if isinstance(value, str):
        if not targets:
            raise not_expandable(head, param)
        node[head] = value = _find_or_make(api, call, targets, value)
    if rest:
        sub = next(iter(targets), field) if isinstance(value, dict) else field
        _expand(api, call, value, sub if targets else field, rest, param)


def _object_branch(api: OpenApi, schema: Any, node: dict[str, Any]) -> Any:
    """The ``anyOf`` branch describing ``node`` (by its ``object`` value)."""
    for alt in branches(api.spec, schema):
        if object_name(api.spec, alt) == node.get("object"):
            return alt
    return schema


def _targets(api: OpenApi, field: Any) -> list[Any]:
    if not isinstance(field, dict):
        return []
    expansion = field.get("x-expansionResources")
    if isinstance(expansion, dict) and isinstance(expansion.get("oneOf"), list):
        return list(expansion["oneOf"])
    return []


def _find_or_make(api: OpenApi, call: Call, targets: list[Any], id: str) -> dict[str, Any]:
    """The object ``id`` names: kept in the world, or (a reference to something outside the
    agent's doing) made now with that id and kept."""
    names = [object_name(api.spec, t) for t in targets]
    for name in names:
        if name is None:
            continue
        found = call.world.get(f"stripe.{name.replace('.', '_')}s", id)
        if found is not None:
            return found
    gen = api.generator(call.world)
    made = gen.value(targets[0])
    if not isinstance(made, dict) or names[0] is None:
        raise no_such(names[0] or "object", id)
    made["id"] = id
    call.world.put(f"stripe.{names[0].replace('.', '_')}s", made)
    return made


__all__ = ["wrap"]
