"""The mitmproxy addon: the only module that touches mitmproxy flows.

Per request: convert the flow to a :class:`guard.request.Request`, decide, then
simulate (answer here), block (answer here) or allow (mark the flow; only then
may ``server_connect`` open an upstream socket). Every flow is audited when it
ends. Any exception blocks the request with a 500 naming the rule: fail closed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import connection, ctx, http, tcp
from mitmproxy.net.http import url
from mitmproxy.proxy import mode_specs, server_hooks

from guard import internal_host
from guard.audit.event import EventBuilder, FlowRecord
from guard.audit.recorder import Recorder
from guard.audit.writer import AuditWriter
from guard.blocked import block_response, error_response
from guard.decision import Action, Decision
from guard.engine import Engine
from guard.errors import AuditError, GuardError, StoreUnavailable, WorldError
from guard.net import egress
from guard.request import Request, Response
from guard.sandbox import Identity, Registry, identify
from guard.sandbox.policies import PolicyEngines
from guard.synth.simulator import Simulator

log = logging.getLogger("guard")

SANDBOX_HEADER = "x-guard-sandbox"
ERROR_RULE_ID = "guard.internal-error"
AUDIT_RULE_ID = "guard.audit-unavailable"
STORE_RULE_ID = "guard.store-unavailable"
RAW_TCP_RULE_ID = "guard.raw-tcp"
EGRESS_RULE_ID = "guard.egress-refused"
META = "guard"  # flow.metadata key holding a _FlowState


@dataclass
class Settings:
    """Runtime settings from the command line."""

    guard_headers: bool = True
    sandbox_from: str = "client"  # client | header | proxy-user


@dataclass
class _FlowState:
    request: Request
    decision: Decision
    started: float
    t0: float
    changes: list[Any] = field(default_factory=list)
    error: str | None = None
    recorded: bool = False
    policy: str | None = None  # the sandbox's policy label, named in its audit event
    request_seq: int | None = None  # the request event of an allowed flow


class GuardAddon:
    """Decides every request. ``engine`` may be swapped at any time (hot reload): a request
    keeps the engine it started with. ``resolve`` looks up the names of allowed requests
    (a seam for tests)."""

    def __init__(self, engine: Engine, simulator: Simulator, audit: AuditWriter,
                 settings: Settings | None = None, events: EventBuilder | None = None,
                 resolve: egress.Resolver = egress.system_resolve,
                 registry: Registry | None = None,
                 policies: PolicyEngines | None = None) -> None:
        self.engine = engine
        self.registry = registry if registry is not None else Registry()
        self.policies = policies if policies is not None else PolicyEngines()
        self.admin: Any = None  # the admin listener (guard.admin.server), when configured
        self.simulator = simulator
        self.audit = audit
        self.settings = settings or Settings()
        self.events = events or EventBuilder()
        self.recorder = Recorder(audit, self.events, self._publish)
        self.internal = internal_host.InternalHost(simulator.worlds)
        self.resolve = resolve
        # client id -> {(address, port) guard may connect to: the allowed name it stands for}
        self._allowed: dict[str, dict[tuple[str, int], str]] = {}
        # client id -> the Proxy-Authorization of its CONNECT ("" when it had none): inside
        # a tunnel only the CONNECT's credentials count, never a header of a tunnelled request
        self._proxy_auth: dict[str, str] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self.upstream_attempts: list[tuple[str, int, bool]] = []  # (host, port, permitted)

    # mitmproxy lifecycle

    def configure(self, updated: set[str]) -> None:
        # Simulated and blocked requests must never cause an upstream handshake.
        if ctx.options.connection_strategy != "lazy":
            ctx.options.connection_strategy = "lazy"
        if ctx.options.upstream_cert:
            ctx.options.upstream_cert = False

    def done(self) -> None:
        # The shutdown checkpoint (with --audit-key) marks the end of an untruncated log.
        self.audit.close()

    def client_disconnected(self, client: connection.Client) -> None:
        self._allowed.pop(client.id, None)
        self._proxy_auth.pop(client.id, None)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._proxy_auth[flow.client_conn.id] = flow.request.headers.get(
            "proxy-authorization", "")

    # the decision

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        if flow.response is not None or META in flow.metadata:
            return None
        started, t0 = time.time(), time.perf_counter()
        engine, simulator = self.engine, self.simulator
        decision = Decision(Action.ERROR, ERROR_RULE_ID, "")
        state = _FlowState(_bare_request(flow), decision, started, t0)
        flow.metadata[META] = state
        try:
            identity = self._identify(flow)
            state.request = req = self._to_request(flow, identity.sandbox or "")
            self.audit.ready()  # raises while the log cannot be written (and heals it)
            if identity.refused:  # before guard.internal and the rules: nothing for strangers
                state.decision = Decision(Action.BLOCK, identity.rule or "", identity.reason)
                self._answer(flow, self._refusal(state.decision), state.decision)
                return None
            if req.sandbox in self.registry:
                self.registry.touch(req.sandbox)
                policy = self.registry.policy(req.sandbox)
                state.policy = policy.label()
                engine = self.policies.engine(engine, policy)
                simulator = self.policies.simulator(simulator, policy)
            if req.host == internal_host.HOST:  # guard's own host: before rules, never forwarded
                return self._internal(flow, state)
            state.decision = decision = _name_check(flow, req) or engine.decide(req)
            if decision.action == "allow":
                return self._route(flow, state)  # mitmproxy awaits it: name lookup
            elif decision.action == "simulate":
                result = simulator.respond(decision, req)
                state.changes = result.changes
                self._answer(flow, result.response, decision)
                for effect in result.effects:
                    self._schedule(effect)
            else:
                self._answer(flow, block_response(decision), decision)
        except AuditError as e:
            state.decision = Decision(Action.BLOCK, AUDIT_RULE_ID, str(e))
            self._fail(flow, state, 503, AUDIT_RULE_ID, str(e))
        except StoreUnavailable as e:  # Redis away: fail closed, say so, recover when it is back
            log.error("guard: request blocked: %s", e)
            state.decision = Decision(Action.ERROR, STORE_RULE_ID, str(e), decision.rule)
            self._fail(flow, state, 503, STORE_RULE_ID, str(e))
        except Exception as e:  # fail closed: whatever broke, the request does not go out
            rule_id = getattr(e, "rule_id", None) or decision.rule_id
            message = str(e) if isinstance(e, GuardError) else f"{type(e).__name__}: {e}"
            log.error("guard: rule %s failed, request blocked: %s", rule_id, message,
                      exc_info=not isinstance(e, GuardError))
            state.decision = Decision(Action.ERROR, rule_id, message, decision.rule)
            self._fail(flow, state, 500, rule_id, message)
        return None

    def _internal(self, flow: http.HTTPFlow,
                  state: _FlowState) -> Coroutine[Any, Any, None] | None:
        state.decision = Decision(Action.SIMULATE, internal_host.RULE_ID,
                                  f"answered by guard itself ({internal_host.HOST})")
        answer = self.internal.handle(state.request)
        if isinstance(answer, Response):
            self._answer(flow, answer, state.decision)
            return None
        return self._answer_later(flow, state, answer)

    async def _answer_later(self, flow: http.HTTPFlow, state: _FlowState,
                            answer: Awaitable[Response]) -> None:
        """mitmproxy awaits a coroutine returned by a hook: the SSE long poll waits here."""
        try:
            self._answer(flow, await answer, state.decision)
        except Exception as e:
            log.exception("guard: %s failed", internal_host.HOST)
            self._fail(flow, state, 500, internal_host.RULE_ID, f"{type(e).__name__}: {e}")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get(META)
        if state is None or state.decision.action != "allow" or flow.response is None:
            return
        ctype = flow.response.headers.get("content-type", "")
        if ctype.startswith("text/event-stream") or "chunked" in flow.response.headers.get(
            "transfer-encoding", ""
        ) and not flow.response.headers.get("content-length"):
            flow.response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get(META)
        if state is None or flow.response is None:
            return
        if self.settings.guard_headers and "X-Guard-Rule" not in flow.response.headers:
            flow.response.headers["X-Guard-Rule"] = state.decision.rule_id
            flow.response.headers["X-Guard-Action"] = state.decision.action
        self._record(flow, state)

    def error(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get(META)
        if state is None:
            return
        if state.error is None and flow.error is not None:
            state.error = flow.error.msg
        self._record(flow, state)

    # the last gate

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        allowed = self._allowed.get(data.client.id, {})
        name = allowed.get((address[0], address[1])) if address is not None else None
        permitted = name is not None
        if address is not None:
            self.upstream_attempts.append((address[0], address[1], permitted))
            del self.upstream_attempts[:-1000]
        if name is not None and data.server.sni is not None and not egress.is_ip(name):
            # The connection goes to the checked address of the allowed name, and the TLS
            # handshake (SNI and certificate check) is for that name, never for the address.
            data.server.sni = name
        if not permitted:
            data.server.error = ("guard: upstream connection refused: no allow rule decided "
                                 f"a request to {address}")
            log.info("guard: refused upstream connection to %s", address)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        # Raw TCP is never decided by a rule; server_connect refuses its upstream socket.
        flow.metadata[META] = RAW_TCP_RULE_ID
        server = flow.server_conn.address
        client = flow.client_conn.peername
        req = Request("TCP", "tcp", str(server[0]) if server else "", server[1] if server else 0,
                      "", client=client[0] if client else "")
        try:
            self.recorder.flow(FlowRecord(
                req, RAW_TCP_RULE_ID, "block", "raw TCP is not allowed through guard",
                started=time.time()))
        except Exception as e:
            log.error("guard: cannot record a refused raw TCP connection: %s", e)
        flow.kill()

    # helpers

    def _identify(self, flow: http.HTTPFlow) -> Identity:
        """The proven sandbox of a request (see guard.sandbox.identity), or a refusal."""
        r = flow.request
        client = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        connect_auth = self._proxy_auth.get(flow.client_conn.id)
        proxy_auth = connect_auth if connect_auth is not None else r.headers.get(
            "proxy-authorization")
        return identify(self.settings.sandbox_from, self.registry, client=client,
                        header=r.headers.get(SANDBOX_HEADER), proxy_auth=proxy_auth)

    def _refusal(self, decision: Decision) -> Response:
        response = block_response(decision)
        if self.settings.sandbox_from != "proxy-user":
            return response
        headers = [*response.headers, ("Proxy-Authenticate", 'Basic realm="guard sandbox"')]
        return Response(407, headers, response.body)

    def _to_request(self, flow: http.HTTPFlow, sandbox: str) -> Request:
        r = flow.request
        client = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        headers = tuple((k.lower(), v) for k, v in r.headers.items(multi=True))
        # The sandbox header and proxy credentials are guard's (they carry sandbox tokens),
        # never the real service's.
        for name in (SANDBOX_HEADER, "proxy-authorization"):
            if name in r.headers:
                del r.headers[name]
        headers = tuple(h for h in headers if h[0] not in (SANDBOX_HEADER, "proxy-authorization"))
        host = egress.normal_name(_host_header_name(flow) or flow.client_conn.sni or r.host)
        return Request(
            method=r.method.upper(), scheme=r.scheme, host=host, port=r.port, path=r.path.split(
                "?", 1)[0], query=tuple(r.query.items(multi=True)), headers=headers,
            body=r.get_content(strict=False) or b"", client=client, sandbox=sandbox,
            sni=flow.client_conn.sni,
        )

    async def _route(self, flow: http.HTTPFlow, state: _FlowState) -> None:
        """Resolve the allowed name and send the request to a permitted address of it,
        whatever address the client picked; refuse it if there is none."""
        try:
            await self._resolve_and_check(flow, state)
        except AuditError as e:  # the request's event could not be written: not forwarded
            state.decision = Decision(Action.BLOCK, AUDIT_RULE_ID, str(e))
            self._fail(flow, state, 503, AUDIT_RULE_ID, str(e))
        except Exception as e:  # fail closed, as for any other decision
            log.error("guard: routing an allowed request failed: %s", e, exc_info=True)
            rule_id = state.decision.rule_id
            state.decision = Decision(Action.ERROR, rule_id, f"{type(e).__name__}: {e}",
                                      state.decision.rule)
            self._fail(flow, state, 500, rule_id, state.decision.reason)

    async def _resolve_and_check(self, flow: http.HTTPFlow, state: _FlowState) -> None:
        decision, name, port = state.decision, state.request.host, flow.request.port
        allow_private = bool(decision.rule is not None and decision.rule.rule.allow_private)
        try:
            addresses = await self.resolve(name, port)
        except (OSError, UnicodeError) as e:
            log.info("guard: cannot resolve %s: %s", name, e)
            addresses = []
        route = egress.choose(name, addresses, allow_private=allow_private)
        if route.address is None:
            state.decision = Decision(Action.BLOCK, EGRESS_RULE_ID,
                                      f"rule {decision.rule_id} allows it, but {route.why}",
                                      decision.rule)
            self._answer(flow, block_response(state.decision), state.decision)
            return
        # Written before the request goes anywhere: an allowed request is on record even if
        # guard dies while it is out. AuditError propagates: then it is not forwarded.
        state.request_seq = self.recorder.request(FlowRecord(
            request=state.request, rule_id=decision.rule_id, action=decision.action,
            reason=decision.reason, started=state.started, policy=state.policy))["seq"]
        # Only the target changes: the Host header and :authority stay the client's name.
        flow.request.data.host = route.address
        self._allowed.setdefault(flow.client_conn.id, {})[(route.address, port)] = name

    def _answer(self, flow: http.HTTPFlow, response: Response, decision: Decision) -> None:
        headers = http.Headers([(k.encode(), v.encode()) for k, v in response.headers])
        flow.response = http.Response.make(response.status, response.body, headers)

    def _fail(self, flow: http.HTTPFlow, state: _FlowState, status: int, rule_id: str,
              message: str) -> None:
        state.error = message
        self._answer(flow, error_response(status, rule_id, message), state.decision)

    def _record(self, flow: http.HTTPFlow, state: _FlowState) -> None:
        if state.recorded:
            return
        state.recorded = True
        resp = flow.response
        body: bytes | None = b""
        if resp is not None:
            body = None if resp.stream else (resp.get_content(strict=False) or b"")
        record = FlowRecord(
            request=state.request, rule_id=state.decision.rule_id, action=state.decision.action,
            reason=state.decision.reason, status=resp.status_code if resp else None,
            response_headers=list(resp.headers.items(multi=True)) if resp else [],
            response_body=body, upstream=flow.server_conn.timestamp_start is not None,
            started=state.started, duration_ms=(time.perf_counter() - state.t0) * 1000,
            changes=state.changes, error=state.error, policy=state.policy,
            request_seq=state.request_seq,
        )
        try:
            self.write_event(record)
        except Exception as e:  # an unrecorded flow must not get its answer: fail closed
            if isinstance(e, AuditError):
                message = str(e)
                log.error("guard: %s; blocking all traffic until the audit log is writable", e)
            else:
                message = f"cannot record this flow: {type(e).__name__}: {e}"
                log.exception("guard: %s", message)
            if resp is not None and not resp.stream:
                flow.response = http.Response.make(503, json.dumps({"error": {
                    "type": "guard_error", "rule": AUDIT_RULE_ID, "message": message}}),
                    {"Content-Type": "application/json"})

    def write_event(self, record: FlowRecord) -> dict[str, Any]:
        """Build, write and publish (guard.internal's live feed) one audit event. Also used
        by the SMTP sink for the messages it keeps. Raises AuditError when it cannot write."""
        return self.recorder.flow(record)

    def _publish(self, event: dict[str, Any]) -> None:
        try:
            internal_host.publish(self.simulator.worlds, event)
        except WorldError as e:  # the log has the event; the live feed misses it (Redis away)
            log.warning("guard: event not in the live feed: %s", e)

    def _schedule(self, effect: Any) -> None:
        loop = asyncio.get_running_loop()

        async def run() -> None:
            try:
                result = effect()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("guard: after-response effect failed")

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _bare_request(flow: http.HTTPFlow) -> Request:
    """What is known of a flow before it is fully converted (audited if conversion fails)."""
    r = flow.request
    peer = flow.client_conn.peername
    return Request(method=str(r.method), scheme=str(r.scheme), host=str(r.host), port=r.port,
                   path=str(r.path).split("?", 1)[0], client=str(peer[0]) if peer else "")


def _name_check(flow: http.HTTPFlow, req: Request) -> Decision | None:
    """A block decision when the request has no single name to decide on."""
    transparent = isinstance(flow.client_conn.proxy_mode, mode_specs.TransparentMode)
    refusal = egress.unnamed(_host_header_name(flow), flow.client_conn.sni, transparent)
    return Decision(Action.BLOCK, *refusal) if refusal else None


def _host_header_name(flow: http.HTTPFlow) -> str | None:
    value = flow.request.host_header
    if not value:
        return None
    try:
        return url.parse_authority(value, check=False)[0] or None
    except ValueError:
        return None
