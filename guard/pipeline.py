"""The request pipeline: one pure function from guard's :class:`Request` to its whole
:class:`Outcome`. The proxy, ``guard test`` and the SMTP sink all call :func:`handle`;
nothing else decides a request or maps an exception to a rule id.

The steps, in order (the first that applies decides)::

    audit log unwritable     -> block  guard.audit-unavailable   503
    sandbox not proven       -> block  guard.sandbox-missing / -unproven  403 (407 asking
                                for proxy credentials with --sandbox-from proxy-user)
    the sandbox's policy     -> picks the engine (packs) and simulator (webhook hosts)
    guard's own service      -> simulate, answered by guard      (guard.internal, the SMTP sink)
    no single name           -> block  guard.sni-mismatch / guard.no-host  403
    the rules                -> simulate (response, world changes, effects)
                                block    403 naming the rule
                                allow    no response: the proxy connects upstream, unless
                                         guard/allow.py refuses it (guard.port-refused,
                                         -upgrade-refused, -method-override,
                                         -read-with-body, -ambiguous-path) 403
    world store away         -> error  guard.store-unavailable   503
    over a limit             -> block  guard.limit.*  413 (guard/limits.py)
    any exception            -> error  500 naming the rule that failed   (fail closed)

No mitmproxy here and no I/O of its own: the caller brings the request, the packs
(rules and their responses) and the simulator (:class:`Context`), and does what the
outcome says.

>>> from guard.packs import load_packs
>>> from guard.world import MemoryStore
>>> ctx = Context(load_packs([]), Simulator(MemoryStore(seed=1)))
>>> out = handle(Request.build("GET", "https://example.org/"), ctx)
>>> out.decision.rule_id, out.response.status
('guard.default-deny', 403)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from guard import allow
from guard.blocked import block_response, error_response, limit_response
from guard.decision import Action, Decision, NearMiss
from guard.errors import AuditError, GuardError, StoreUnavailable
from guard.faults import Fault
from guard.limits import LimitExceeded
from guard.net import egress
from guard.packs import Packs
from guard.request import Request, Response
from guard.sandbox import Identity, Registry
from guard.sandbox.policies import PolicyEngines
from guard.synth.context import Effect
from guard.synth.simulator import Simulator
from guard.world.store import Change

log = logging.getLogger("guard")

ERROR_RULE_ID = "guard.internal-error"
AUDIT_RULE_ID = "guard.audit-unavailable"
STORE_RULE_ID = "guard.store-unavailable"
RAW_TCP_RULE_ID = "guard.raw-tcp"
EGRESS_RULE_ID = "guard.egress-refused"

Answer = Callable[[Request], "Response | Awaitable[Response]"]
"""How one of guard's own services answers (an awaitable for a long poll)."""


@dataclass(frozen=True)
class Service:
    """A service guard answers itself, before any rule: guard.internal, the SMTP sink."""

    rule_id: str
    reason: str
    answer: Answer


@dataclass(frozen=True)
class Names:
    """What the connection says the destination is called (the proxy knows, a test case
    does not): the Host header's name, the TLS SNI, and whether the client was
    redirected (transparent mode) rather than asking a proxy."""

    host_header: str | None
    sni: str | None
    transparent: bool = False


@dataclass
class Context:
    """What a request is decided and answered with. ``packs`` (the engine and the responses
    of one rule set) is swapped whole on a hot reload; a request keeps the packs it
    started with. ``registry`` holds the sandboxes created through the control plane
    (their policies pick packs from ``policies``); ``challenge`` makes identity refusals
    ask for proxy credentials (407)."""

    packs: Packs
    simulator: Simulator
    audit_ready: Callable[[], None] = lambda: None  # raises AuditError while it cannot write
    registry: Registry = field(default_factory=Registry)
    policies: PolicyEngines = field(default_factory=PolicyEngines)
    challenge: bool = False


@dataclass(frozen=True)
class Outcome:
    """Everything that happened to one request. ``response`` is None for ``allow`` (the
    request goes upstream) and while ``pending`` (a service answers later)."""

    decision: Decision
    response: Response | None = None
    changes: tuple[Change, ...] = ()
    effects: tuple[Effect, ...] = ()
    error: str | None = None
    pending: Awaitable[Response] | None = None
    near_misses: tuple[NearMiss, ...] = ()
    policy: str | None = None  # the sandbox's policy label (named in its audit event)
    fault: Fault | None = None  # what guard.faults injected (the proxy delays or resets)

    @property
    def action(self) -> Action:
        return self.decision.action

    @property
    def rule_id(self) -> str:
        return self.decision.rule_id


def handle(req: Request, ctx: Context, *, identity: Identity | None = None,
           names: Names | None = None, service: Service | None = None,
           explain: bool = False) -> Outcome:
    """Decide ``req`` and answer it (see the module docstring for the steps).

    ``identity`` (how the sandbox was proven) refuses unproven requests; ``names`` (from
    the connection) turns on the name check; ``service`` answers the request as one of
    guard's own services whatever its host; ``explain`` also collects the rules that did
    not match (for ``guard test``). Never raises.
    """
    packs, simulator = ctx.packs, ctx.simulator
    decision = Decision(Action.ERROR, ERROR_RULE_ID, "")
    policy: str | None = None
    try:
        ctx.audit_ready()  # raises while the log cannot be written (and heals it)
        if identity is not None and identity.refused:  # nothing for strangers
            decision = Decision(Action.BLOCK, identity.rule or "", identity.reason)
            return Outcome(decision, _refusal(decision, ctx.challenge))
        if identity is not None and identity.looked_up and identity.sandbox == req.sandbox:
            registered = identity.registered  # one read of the registry per request
        else:
            registered = ctx.registry.get(req.sandbox)
        if registered is not None:
            ctx.registry.touch(req.sandbox)
            sandbox_policy = registered.policy
            policy = sandbox_policy.label()
            packs = ctx.policies.packs(packs, sandbox_policy)
            simulator = ctx.policies.simulator(simulator, sandbox_policy)
        if service is not None:
            decision = Decision(Action.SIMULATE, service.rule_id, service.reason)
            return replace(_serve(service, decision, req), policy=policy)
        refusal = egress.unnamed(names.host_header, names.sni, names.transparent) \
            if names is not None else None
        near: tuple[NearMiss, ...] = ()
        if refusal is not None:
            decision = Decision(Action.BLOCK, *refusal)
        elif explain:
            explanation = packs.engine.explain(req)
            decision, near = explanation.decision, explanation.near_misses
        else:
            decision = packs.engine.decide(req)
        if decision.action is Action.SIMULATE:
            result = simulator.respond(decision, req, packs.responders)
            return Outcome(decision, result.response, tuple(result.changes),
                           tuple(result.effects), near_misses=near, policy=policy,
                           fault=result.fault)
        if decision.action is Action.ALLOW:
            excess = allow.refusal(req, decision.rule.rule if decision.rule else None)
            if excess is not None:  # more than the rule allows: a port, an upgrade, ...
                decision = Decision(Action.BLOCK, excess.rule_id, excess.reason,
                                    decision.rule)
                return Outcome(decision, block_response(decision), near_misses=near,
                               policy=policy)
            return Outcome(decision, near_misses=near, policy=policy)
        return Outcome(decision, block_response(decision), near_misses=near, policy=policy)
    except Exception as e:  # fail closed: whatever broke, the request does not go out
        return replace(failed(e, decision), policy=policy)


def _refusal(decision: Decision, challenge: bool) -> Response:
    response = block_response(decision)
    if not challenge:
        return response
    headers = [*response.headers, ("Proxy-Authenticate", 'Basic realm="guard sandbox"')]
    return Response(407, headers, response.body)


def _serve(service: Service, decision: Decision, req: Request) -> Outcome:
    answer = service.answer(req)
    if isinstance(answer, Response):
        return Outcome(decision, answer)
    return Outcome(decision, pending=answer)


def failed(e: BaseException, decision: Decision) -> Outcome:
    """The fail-closed outcome of an exception raised while deciding or answering under
    ``decision``: 503 naming the audit log when it cannot be written, 503 naming the store
    when the shared world store (Redis) is away, else 500 naming the rule that failed (the
    error's own rule id, or the decision's)."""
    if isinstance(e, AuditError):
        blocked = Decision(Action.BLOCK, AUDIT_RULE_ID, str(e))
        return Outcome(blocked, error_response(503, AUDIT_RULE_ID, str(e)), error=str(e))
    if isinstance(e, LimitExceeded):  # more than guard takes from one request
        blocked = Decision(Action.BLOCK, e.rule_id, e.reason, decision.rule)
        return Outcome(blocked, _limit_answer(e, decision))
    if isinstance(e, StoreUnavailable):  # fail closed, say so, recover when it is back
        log.error("guard: request blocked: %s", e)
        errored = Decision(Action.ERROR, STORE_RULE_ID, str(e), decision.rule)
        return Outcome(errored, error_response(503, STORE_RULE_ID, str(e)), error=str(e))
    rule_id = getattr(e, "rule_id", None) or decision.rule_id
    message = str(e) if isinstance(e, GuardError) else f"{type(e).__name__}: {e}"
    log.error("guard: rule %s failed, request blocked: %s", rule_id, message,
              exc_info=e if not isinstance(e, GuardError) else None)
    errored = Decision(Action.ERROR, rule_id, message, decision.rule)
    return Outcome(errored, error_response(500, rule_id, message), error=message)


def _limit_answer(e: LimitExceeded, decision: Decision) -> Response:
    """A limit passed while a rule was answering (a full world) is answered in the shape of
    the rule's provider (Stripe's invalid_request_error, ...); otherwise guard's JSON."""
    rule = decision.rule
    if rule is None or decision.action is not Action.SIMULATE:
        return limit_response(e.status, e.rule_id, e.reason)
    from guard.openapi.problems import SHAPES
    from guard.openapi.validate import Issue

    shape = SHAPES.get(rule.error_shape, SHAPES["rfc9457"])
    return shape.invalid(Issue("limit", None, f"guard refused this request (rule "
                               f"{e.rule_id}): {e.reason}", "resource_limit"))


def refused(decision: Decision, why: str) -> Outcome:
    """An allowed request with nowhere permitted to go (private address, no address)."""
    blocked = Decision(Action.BLOCK, EGRESS_RULE_ID,
                       f"rule {decision.rule_id} allows it, but {why}", decision.rule)
    return Outcome(blocked, block_response(blocked))


def unrecorded(e: BaseException) -> tuple[str, Response]:
    """The answer for a flow whose audit event could not be written: an unrecorded flow
    does not get its answer. Returns (message, 503 response)."""
    if isinstance(e, AuditError):
        message = str(e)
        log.error("guard: %s; blocking all traffic until the audit log is writable", e)
    else:
        message = f"cannot record this flow: {type(e).__name__}: {e}"
        log.error("guard: %s", message, exc_info=e)
    return message, error_response(503, AUDIT_RULE_ID, message)


def raw_tcp(req: Request) -> Outcome:
    """Raw TCP is never decided by a rule: it is refused (and audited) as such."""
    return Outcome(Decision(Action.BLOCK, RAW_TCP_RULE_ID, "raw TCP is not allowed through guard"))
