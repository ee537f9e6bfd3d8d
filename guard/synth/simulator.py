"""Answer a simulate decision: render the rule's response inside a world transaction."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateError as JinjaError

from guard.decision import Decision
from guard.errors import GuardError, HandlerError, TemplateError
from guard.faults import Fault, Faults, Injector
from guard.limits import WORLD_LIMITS_OPTION
from guard.request import Request, Response, json_bytes
from guard.resources import builtin_templates
from guard.rules.compiled import CompiledRule
from guard.synth.context import Effect, SimContext, template_context
from guard.synth.respond import Body, CompiledRespond, RespondCompiler
from guard.synth.templates import Renderable
from guard.world.deliveries import Delivery
from guard.world.store import Change, World, WorldStore


@dataclass
class SimResult:
    response: Response
    changes: list[Change] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)  # queued once committed
    fault: Fault | None = None  # what guard.faults injected (the addon delays, resets)


def _fault_response(fault: Fault, shape_name: str) -> Response:
    """The provider's own 429 or 500 for an injected error. A timeout or reset has no
    answer through a proxy (the addon closes the connection); this one is what ``guard
    test`` and the audit log show for it."""
    from guard.openapi.problems import SHAPES

    shape = SHAPES.get(shape_name, SHAPES["rfc9457"])
    if fault.kind == "rate_limit":
        return shape.rate_limited()
    if fault.kind == "server_error":
        return shape.server_error()
    return Response(504 if fault.kind == "timeout" else 502,
                    [("Content-Type", "text/plain; charset=utf-8")],
                    f"guard injected a {fault.kind}".encode())


def world_name(partition: tuple[str, Any] | None, req: Request) -> str:
    """The sandbox's world, or its sub-world named by the pack's ``world_by_header``
    (``Stripe-Account: acct_1`` -> ``<sandbox>/acct_1``)."""
    if partition is not None:
        value = req.header(partition[0])
        if value and partition[1].fullmatch(value):
            return f"{req.sandbox}/{value}"
    return req.sandbox


class Simulator:
    """Renders simulated responses against a :class:`WorldStore`.

    >>> import json
    >>> from guard.packs import load_packs
    >>> from guard.world import MemoryStore
    >>> packs, sim = load_packs([]), Simulator(MemoryStore(seed=1))
    >>> req = Request.build("POST", "https://api.stripe.com/v1/customers",
    ...     headers={"Authorization": "Bearer sk_test_x",
    ...              "Content-Type": "application/x-www-form-urlencoded"}, body="email=a@b.c")
    >>> out = sim.respond(packs.engine.decide(req), req, packs.responders)
    >>> out.response.status, json.loads(out.response.body)["email"]
    (200, 'a@b.c')
    """

    def __init__(self, worlds: WorldStore, options: Mapping[str, Any] | None = None, *,
                 faults: Faults | None = None, injector: Injector | None = None) -> None:
        self.worlds = worlds
        self.options: Mapping[str, Any] = dict(options or {})
        self.faults = faults  # a sandbox policy's: in place of every rule's own
        self.injector = injector or Injector(getattr(worlds, "seed", None))
        self._compiler = RespondCompiler(builtin_templates())

    def respond(self, decision: Decision, req: Request,
                responders: Mapping[CompiledRule, CompiledRespond]) -> SimResult:
        """Answer ``decision`` with its rule's response from ``responders`` (those loaded
        with the engine that decided). Raises :class:`TemplateError` or
        :class:`HandlerError` (naming the rule) on failure; the world is then left as it
        was."""
        rule = decision.rule
        spec = responders.get(rule) if rule is not None else None
        if spec is None:
            raise TemplateError(decision.rule_id, "rule has no respond section")
        faults = self.faults if self.faults is not None else \
            (rule.faults if rule is not None else None)
        fault = self.injector.fault(faults, req.sandbox, rule.pack) \
            if rule is not None and faults is not None else None
        if fault is not None and fault.kind is not None:
            assert rule is not None
            return SimResult(_fault_response(fault, rule.error_shape), fault=fault)
        world = self.worlds.world(world_name(rule.partition if rule is not None else None, req))
        base_dir = spec.base_dir
        limits = self.options.get(WORLD_LIMITS_OPTION)

        def attempt(changes: list[Change]) -> SimResult:
            # Run again from the start when a concurrent writer (another replica) got in
            # first: the request number, ids and effects are this attempt's own.
            world.clock.tick()
            effects: list[Effect] = []
            deliveries: list[Delivery] = []
            response = self._run(spec, decision, req, world, effects, deliveries, base_dir)
            if limits is not None:  # a full world refuses what would grow it (guard/limits)
                world.check_room(*limits)
            return SimResult(response, changes, effects, deliveries)

        result = world.atomically(attempt)
        self.worlds.flush(world)
        # Committed: queue its deliveries before the answer goes out, where every replica
        # sees them (a replica that dies after this point leaves them to the others).
        if result.deliveries:
            self.worlds.deliveries.add(result.deliveries, time.time())
        result.changes = list(result.changes)
        result.fault = fault
        return result

    def _run(self, spec: CompiledRespond, decision: Decision, req: Request, world: World,
             effects: list[Effect], deliveries: list[Delivery], base_dir: Path) -> Response:
        rule_id = decision.rule_id
        if spec.handler is not None:
            ctx = SimContext(req, decision.captures, world, rule_id,
                             lambda name, **extra: self._render_file(spec, name, base_dir, req,
                                                                    decision, world, extra),
                             effects, self.options, lambda: self.worlds.flush(world),
                             deliveries)
            try:
                return spec.handler(ctx)
            except GuardError:
                raise
            except Exception as e:
                raise HandlerError(rule_id, f"{type(e).__name__}: {e}") from e
        context = template_context(req, decision.captures, world, rule_id)
        try:
            if spec.from_store is not None:
                collection, id_t, missing = spec.from_store
                obj = world.get(collection, str(id_t.render(context)))
                if obj is None:
                    return self._build(missing.status, missing.headers, missing.body, None,
                                       context)
                return self._build(spec.status, spec.headers, None, spec.content_type, context,
                                   data=obj)
            response, data = self._build_with_data(spec, context)
            if spec.store is not None and data is not None:
                collection, store_id = spec.store
                key = str(store_id.render(context)) if store_id is not None else None
                if not isinstance(data, dict):
                    raise TemplateError(rule_id, "store needs the body to be an object")
                world.put(collection, data, key)
            return response
        except GuardError:
            raise
        except (JinjaError, ValueError, TypeError, KeyError, AttributeError,
                ArithmeticError) as e:
            raise TemplateError(rule_id, f"{type(e).__name__}: {e}") from e

    def _build_with_data(self, spec: CompiledRespond,
                         context: Mapping[str, Any]) -> tuple[Response, Any]:
        data = spec.body.template.render(context) if spec.body is not None else None
        if spec.body is not None and not spec.body.data:
            return self._build(spec.status, spec.headers, None, spec.content_type, context,
                               text=str(data)), None
        return self._build(spec.status, spec.headers, None, spec.content_type, context,
                           data=data), data

    def _build(self, status: int, headers: tuple[tuple[str, Renderable], ...], body: Body | None,
               content_type: str | None, context: Mapping[str, Any], *, data: Any = None,
               text: str | None = None) -> Response:
        if body is not None:
            rendered = body.template.render(context)
            if body.data:
                data = rendered
            else:
                text = str(rendered)
        out_headers = [(k, str(v.render(context))) for k, v in headers]
        names = {k.lower() for k, _ in out_headers}
        if text is not None:
            payload = text.encode("utf-8", "replace")  # a lone surrogate: "?"
            default_type = "text/plain; charset=utf-8"
        elif data is not None:
            payload = json_bytes(data)
            default_type = "application/json"
        else:
            payload, default_type = b"", None
        if "content-type" not in names and (content_type or default_type):
            out_headers.insert(0, ("Content-Type", content_type or default_type or ""))
        return Response(status, out_headers, payload)

    def _render_file(self, spec: CompiledRespond, name: str, base_dir: Path, req: Request,
                     decision: Decision, world: World, extra: Mapping[str, Any]) -> Any:
        try:
            body = (spec.templates or self._compiler).template(name, base_dir)
        except ValueError as e:
            raise TemplateError(decision.rule_id, str(e.args[-1])) from None
        context = template_context(req, decision.captures, world, decision.rule_id)
        context.update(extra)
        try:
            return body.template.render(context)
        except (JinjaError, ValueError, TypeError, KeyError, AttributeError,
                ArithmeticError) as e:
            raise TemplateError(decision.rule_id, f"{name}: {type(e).__name__}: {e}") from e
