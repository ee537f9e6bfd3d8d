"""The ``openapi`` pack source: one compiled rule per operation of the pack's description.

Each operation becomes its own rule (id ``<pack>.openapi.<operation>``, method and path
template of the operation, priority 0), so the engine routes to operations exactly as it
routes to hand-written rules: literal paths before templated ones, and a 500-operation
pack adds 500 small index entries, not one rule that matches everything. A hand-written
rule of the same pack for the same method and path replaces the operation's rule; its
handler then runs after the operation's validation (Stripe's ``parameter_unknown`` on
hand-written endpoints too).

The loader (rules layer) makes the matchers (:func:`build_rules`);
:mod:`guard.synth.responders` makes their responses (:func:`responder`).

A provider package can wrap every operation (``provider: stripe`` imports
``guard.providers.stripe.openapi`` and calls its ``wrap(api, op, answer)``), so the
provider's API-key check, idempotency, ``expand[]`` and request ids apply to generated
operations as to hand-written ones.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from guard.openapi.api import OpenApi, Settings
from guard.openapi.operations import Operation, normalize
from guard.openapi.validate import Invalid
from guard.request import Response
from guard.rules.compiled import CompiledRule, Source
from guard.rules.matchers import HostPattern, PathTemplate
from guard.rules.model import Match, Respond, Rule
from guard.synth import openworld

if TYPE_CHECKING:
    from guard.synth.context import SimContext
    from guard.synth.handlers import Handler
    from guard.synth.respond import CompiledRespond

_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"\{([^{}]+)\}")

Wrap = Callable[[OpenApi, Operation, "Handler"], "Handler"]


def template(path: str) -> tuple[str, dict[str, str]]:
    """The guard path template for an operation path, and capture name -> parameter name
    (parameters that are not identifiers get safe capture names).

    >>> template("/v1/pets/{pet-id}/toys/{toy}")
    ('/v1/pets/{p0}/toys/{toy}', {'p0': 'pet-id', 'toy': 'toy'})
    """
    names: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        safe = name if _SAFE.match(name) and name not in names else f"p{len(names)}"
        names[safe] = name
        return "{" + safe + "}"

    return _PARAM.sub(sub, path), names


def load_api(spec_path: Path, settings: Settings,
             supplements: list[Path] | tuple[Path, ...] = ()) -> OpenApi:
    """Raises :class:`RuleError` (a description that does not load) or ``ValueError``."""
    from guard.openapi.spec import load_spec

    return OpenApi(load_spec(spec_path, supplements), settings)


def provider_wrap(name: str | None, api: OpenApi) -> Wrap | None:
    """The provider's ``wrap``; its ``CHECKS`` join the API's validation and its
    ``adapt(api)``, if any, adjusts the compiled operations."""
    if name is None:
        return None
    try:
        module = importlib.import_module(f"guard.providers.{name}.openapi")
    except ModuleNotFoundError:
        raise ValueError(f"provider {name!r} has no openapi module "
                         f"(guard/providers/{name}/openapi.py)") from None
    wrap = getattr(module, "wrap", None)
    if not callable(wrap):
        raise ValueError(f"guard.providers.{name}.openapi has no wrap(api, op, answer)")
    api.checks.extend(getattr(module, "CHECKS", ()))
    adapt = getattr(module, "adapt", None)
    if callable(adapt):
        adapt(api)  # e.g. parameters newer API versions take that the description lacks
    return wrap  # type: ignore[no-any-return]


def operation_handler(api: OpenApi, op: Operation, names: dict[str, str]) -> Handler:
    """The generated answer for one operation: validate, act on the world, generate."""

    def answer(ctx: SimContext) -> Response:
        captures = {names.get(k, k): v for k, v in ctx.captures.items()}
        return api.handle(op, ctx.request, captures, ctx.world,
                          strict=openworld.strict(ctx.world, ctx.options))

    return answer


def validating(api: OpenApi, op: Operation, names: dict[str, str],
               inner: Handler) -> Handler:
    """A hand-written handler behind the operation's validation."""

    def answer(ctx: SimContext) -> Response:
        captures = {names.get(k, k): v for k, v in ctx.captures.items()}
        try:
            api.validate(op, ctx.request, captures)
        except Invalid as e:
            return api.shape.invalid(e.issue)
        return inner(ctx)

    return answer


def build_rules(api: OpenApi, *, pack: str, prefix: str, hosts: list[str], source: Source,
                first_order: int, own: list[CompiledRule]
                ) -> tuple[list[CompiledRule], dict[str, Operation]]:
    """Matchers for every operation the pack's own rules do not answer. Returns the new
    rules and the operation of every rule (own rules included) that answers one: what
    :func:`responder` answers with, and what ``guard explain`` names."""
    covered: dict[tuple[str, str], CompiledRule] = {}
    for rule in own:
        if rule.methods is not None and len(rule.methods) == 1 and len(rule.paths) == 1:
            covered[(next(iter(rule.methods)), normalize(_plain(rule.paths[0].template)))] = rule
    out: list[CompiledRule] = []
    answers: dict[str, Operation] = {}
    host_patterns = tuple(HostPattern(h) for h in hosts)
    base = api.settings.base_path.rstrip("/")
    for op in api.operations:
        path_t, _ = template(base + op.path)
        hand = covered.get((op.method, normalize(base + op.path)))
        if hand is not None:
            answers[hand.id] = op
            continue
        rule_id = f"{prefix}.{op.slug}"
        model = Rule.model_validate({
            "id": rule_id, "description": f"{op.operation_id}: {op.method} {op.path} "
            f"(from {op.raw.get('x-guardFrom') or api.spec.path.name})",
            "match": Match(method=op.method, path=path_t),
            "action": "simulate", "respond": Respond(handler=f"openapi.{op.slug}"),
        })
        out.append(CompiledRule(
            rule=model, pack=pack, source=source, order=first_order + len(out),
            hosts=host_patterns, methods=frozenset([op.method]),
            paths=(PathTemplate(path_t),), checks=()))
        answers[rule_id] = op
    return out, answers


def responder(api: OpenApi, op: Operation, rule: CompiledRule, own: CompiledRespond | None,
              wrap: Wrap | None, base_dir: Path) -> CompiledRespond | None:
    """What a rule answering ``op`` responds with: for a rule made from the description
    (``own`` is None), the generated answer, wrapped by the provider; for a hand-written
    rule with a handler, that handler behind the operation's validation."""
    from guard.synth.respond import CompiledRespond

    base = api.settings.base_path.rstrip("/")
    if own is None:
        _, names = template(base + op.path)
        handler = operation_handler(api, op, names)
        if wrap is not None:
            handler = wrap(api, op, handler)
        return CompiledRespond(status=op.status, headers=(), body=None, content_type=None,
                               handler=handler, store=None, from_store=None,
                               base_dir=base_dir)
    if own.handler is None:
        return own
    names = _names_for(rule.paths[0].template, base + op.path)
    return replace(own, handler=validating(api, op, names, own.handler))


def _plain(template_text: str) -> str:
    """``/v1/x/{id:int}`` -> ``/v1/x/{id}``."""
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}", r"{\1}", template_text)


def _names_for(rule_template: str, op_path: str) -> dict[str, str]:
    """Capture names of a hand-written rule -> the operation's parameter names, by position."""
    mine = [m.group(1).split(":")[0] for m in _PARAM.finditer(rule_template)]
    theirs = [m.group(1) for m in _PARAM.finditer(op_path)]
    return dict(zip(mine, theirs, strict=False))
