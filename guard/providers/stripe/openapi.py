"""Stripe's operations that no hand-written handler answers, from Stripe's OpenAPI
description (``guard/providers/stripe/spec/``, see guard/openapi/).

Each generated operation runs inside the same :func:`~.api.endpoint` wrapper as the
hand-written ones (API key, ``Idempotency-Key``, ``Request-Id``, errors undoing changes), so
an agent cannot tell which kind answered. ``expand[]`` follows the description's
``x-expansionResources``: a field holding an id becomes the object, found in the sandbox's
world or, for objects the agent cannot create, made on first reference.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from guard.openapi.api import Maker, NotFound, OpenApi
from guard.openapi.operations import FORM
from guard.openapi.schema import branches, merged, object_name, types
from guard.openapi.validate import Invalid, Issue, Validated
from guard.providers.stripe import external, quotes
from guard.providers.stripe.api import SESSIONS, endpoint, session_key
from guard.providers.stripe.call import Call
from guard.providers.stripe.errors import StripeError, no_such, not_expandable
from guard.providers.stripe.expand import MAX_DEPTH
from guard.request import Response
from guard.synth import openworld

if TYPE_CHECKING:
    from guard.openapi.operations import Operation
    from guard.synth.handlers import Handler


# The currencies Stripe accepts (lower-case ISO 4217), from its supported-currencies list.
CURRENCIES = frozenset("""
usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp
byn bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip
gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt
lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr
nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd
std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar
zmw""".split())
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_values(op: Operation, validated: Validated) -> None:
    """Stripe's checks its description does not state: e-mail syntax and the currency list
    (``Invalid email address: x``, ``Invalid currency: xyz``), at any depth."""
    for source in (validated.body, validated.query):
        _walk(source, "")


def _walk(node: Any, name: str) -> None:
    if isinstance(node, dict):
        meta = node.get("metadata")
        if isinstance(meta, dict):
            _metadata(meta, f"{name}[metadata]" if name else "metadata")
        for key, value in node.items():
            child = f"{name}[{key}]" if name else str(key)
            if isinstance(value, str) and value:
                if (key == "email" or key.endswith("_email")) and not _EMAIL.match(value):
                    raise Invalid(Issue("invalid", child, f"Invalid email address: {value}",
                                        "email_invalid"))
                if (key == "currency" or key.endswith("_currency")) and \
                        value.lower() not in CURRENCIES:
                    raise Invalid(Issue("invalid", child, f"Invalid currency: {value[:40]}. "
                                        "Stripe currently supports these currencies: "
                                        + ", ".join(sorted(CURRENCIES)), None))
            else:
                _walk(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{name}[{i}]")


def _metadata(meta: dict[str, Any], name: str) -> None:
    """Stripe's metadata limits: 50 keys, keys up to 40 characters, values up to 500."""
    if len(meta) > 50:
        raise Invalid(Issue("invalid", name, "Invalid metadata: metadata can have up to 50 "
                            "keys, but you passed in " + str(len(meta)) + " keys.", None))
    for key, value in meta.items():
        if len(key) > 40:
            raise Invalid(Issue("invalid", f"{name}[{key[:40]}]", "Invalid metadata: keys "
                                "can be up to 40 characters long.", None))
        if isinstance(value, str) and len(value) > 500:
            raise Invalid(Issue("invalid", f"{name}[{key}]", "Invalid metadata: values can "
                                "be up to 500 characters long.", None))


CHECKS = (check_values,)

_PRICING = {"type": "object", "properties": {"price": {"type": "string", "maxLength": 5000}},
            "title": "pricing_param"}
_FUEL_QUANTITY = {"purchase_details[fuel][quantity_decimal]": {"type": "string",
                                                                "format": "decimal"}}
# Parameters the API version the SDK pins (2026-10-28) takes that the 2024-04-10
# description lacks, so they are not refused as unknown. A bracketed name goes inside
# the object parameter it names (``purchase_details[fuel][quantity_decimal]``, which
# replaced ``volume_decimal``).
NEWER_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/invoiceitems"): {"pricing": _PRICING},
    ("POST", "/v1/invoiceitems/{invoiceitem}"): {"pricing": _PRICING},
    # promotion[type]=coupon&promotion[coupon]=... replaced coupon=...
    ("POST", "/v1/promotion_codes"): {"promotion": {
        "type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "enum": ["coupon"]},
            "coupon": {"type": "string", "maxLength": 5000}}}},
    ("POST", "/v1/terminal/readers/{reader}/process_setup_intent"): {"allow_redisplay": {
        "type": "string", "enum": ["always", "limited", "unspecified"]}},
    ("POST", "/v1/test_helpers/issuing/authorizations/{authorization}/capture"):
        _FUEL_QUANTITY,
    ("POST", "/v1/test_helpers/issuing/transactions/create_force_capture"): _FUEL_QUANTITY,
    ("POST", "/v1/test_helpers/issuing/transactions/create_unlinked_refund"): _FUEL_QUANTITY,
}
# Parameters the description requires that newer API versions no longer do (replaced by
# one of NEWER_PARAMS).
NO_LONGER_REQUIRED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/promotion_codes"): frozenset({"coupon"}),
    ("POST", "/v1/terminal/readers/{reader}/process_setup_intent"): frozenset(
        {"customer_consent_collected"}),
}
NOW_REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/v1/promotion_codes"): ("promotion",),
}


def adapt(api: OpenApi) -> None:
    """Add :data:`NEWER_PARAMS` to the operations' form bodies, drop
    :data:`NO_LONGER_REQUIRED` from their required lists and add :data:`NOW_REQUIRED`
    (copies; the loaded description is left as it is)."""
    for op in api.operations:
        extra = NEWER_PARAMS.get((op.method, op.path))
        if extra and op.body is not None and FORM in op.body:
            schema = api.spec.resolve(op.body[FORM])
            dropped = NO_LONGER_REQUIRED.get((op.method, op.path), frozenset())
            required = [r for r in schema.get("required") or () if r not in dropped]
            required += NOW_REQUIRED.get((op.method, op.path), ())
            props = dict(schema.get("properties") or {})
            for name, param in extra.items():
                _add(api, props, name.replace("]", "").split("["), param)
            op.body = {**op.body, FORM: {**schema, "required": required, "properties": props}}
    _external_account_hash(api)


def _external_account_hash(api: OpenApi) -> None:
    """``external_account`` of a new external account takes a card or bank account hash
    (``external_account[object]=card&external_account[number]=...``) besides a token, as
    Stripe documents; the description types it a string (``x-stripeBypassValidation``).
    The hashes are the description's own: its ``bank_account`` hash, and a customer
    source's ``card`` hash with ``object`` required and a ``currency``."""
    ops = {(o.method, o.path): o for o in api.operations}
    target = ops.get(("POST", "/v1/accounts/{account}/external_accounts"))
    sources = ops.get(("POST", "/v1/customers/{customer}/sources"))
    if target is None or sources is None or target.body is None or sources.body is None \
            or FORM not in target.body or FORM not in sources.body:
        return
    schema = api.spec.resolve(target.body[FORM])
    props = dict(schema.get("properties") or {})

    def hash_of(prop: Any) -> Any:
        node = api.spec.resolve(prop)
        alts = node.get("anyOf") if isinstance(node, dict) else None
        return next(api.spec.resolve(a) for a in alts or () if "object" in types(
            merged(api.spec, a)))

    bank = hash_of(props.get("bank_account"))
    card = hash_of((api.spec.resolve(sources.body[FORM]).get("properties") or {})["card"])
    bank = {**bank, "required": sorted({*(bank.get("required") or ()), "object"})}
    card = {**card, "required": sorted({*(card.get("required") or ()), "object"}),
            "properties": {**card["properties"], "currency": {"type": "string"}}}
    props["external_account"] = {"anyOf": [bank, card, {"type": "string",
                                                        "maxLength": 5000}]}
    target.body = {**target.body, FORM: {**schema, "properties": props}}


def _add(api: OpenApi, props: dict[str, Any], path: list[str], param: Any) -> None:
    """Put ``param`` at ``path`` (``["purchase_details", "fuel", "quantity_decimal"]``)
    into ``props``, copying each object schema on the way down."""
    head, rest = path[0], path[1:]
    if not rest:
        props[head] = param
        return
    inner = api.spec.resolve(props.get(head))
    if not isinstance(inner, dict) or not isinstance(inner.get("properties"), dict):
        raise ValueError(f"NEWER_PARAMS: {head} is not an object parameter")
    copied = {**inner, "properties": dict(inner["properties"])}
    _add(api, copied["properties"], rest, param)
    props[head] = copied


def stripe_error(issue: Issue) -> StripeError:
    return StripeError(400, issue.message, code=issue.code, param=issue.param)


def wrap(api: OpenApi, op: Operation, answer: Handler) -> Handler:
    """The generated answer for ``op`` as a Stripe endpoint."""
    from guard.openapi.pack import template

    _, names = template(api.settings.base_path.rstrip("/") + op.path)

    def run(call: Call) -> Any:
        captures = {names.get(k, k): v for k, v in call.ctx.captures.items()}
        try:
            validated = api.validate(op, call.request, captures)
            result = api.act(op, call.request, validated, call.world,
                             strict=openworld.strict(call.world, call.ctx.options),
                             make=maker(call, op))
        except Invalid as e:
            raise stripe_error(e.issue) from None
        except NotFound as e:
            raise no_such(e.noun, e.id) from None
        data = result.data
        if (op.method, op.path) in quotes.OPERATIONS and isinstance(data, dict):
            quotes.price_lines(call, data)
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
        if isinstance(data, bytes):  # a document (a quote's PDF)
            return Response(result.status, [
                ("Content-Type", result.media_type or "application/octet-stream"),
                ("Request-Id", call.request_id), ("Stripe-Version", call.api_version)], data)
        if op.method == "POST" and op.path == METER_EVENT_SESSION and isinstance(data, dict):
            remember_session(call, data)
        return call.respond(result.status, data)

    run.__name__ = f"openapi_{op.slug.replace('-', '_')}"
    base = op.raw.get("x-stripeBaseAddress")
    servers = op.raw.get("servers")
    files = base == "files" or isinstance(servers, list) and any(
        isinstance(s, dict) and "//files.stripe.com" in str(s.get("url")) for s in servers)
    return endpoint(run, meter_events=base == "meter_events", files=files)


METER_EVENT_SESSION = "/v2/billing/meter_event_session"


def maker(call: Call, op: Operation) -> Maker | None:
    """What a create of an external account or a customer source makes (see .external)."""
    params = external.PARAMS.get(op.path) if op.role == "create" else None
    if params is None:
        return None
    return lambda _op, body: external.made(call, params, body)


def remember_session(call: Call, session: dict[str, Any]) -> None:
    """A meter event session's ``authentication_token`` is the key of the meter event
    stream (:func:`~.api.authenticate`): kept in the sandbox's world by its hash, so the
    token itself is not stored."""
    token = session.get("authentication_token")
    if isinstance(token, str) and token:
        key = session_key(token)
        call.world.put(SESSIONS, {"id": key, "session": session.get("id")}, key)



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


__all__ = ["CHECKS", "NEWER_PARAMS", "adapt", "wrap"]
