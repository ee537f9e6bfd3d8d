"""The egress gate: the only way out.

An allowed request is routed to a checked address of its allowed name (whatever address
the client picked; private, loopback, link-local and metadata addresses are refused
unless the rule says otherwise). ``server_connect`` runs before every upstream socket,
raw TCP and ignored hosts included, and refuses all but the routes made here: a
simulated or blocked request never causes even a TCP handshake. Raw TCP is refused.
An allowed request's audit event is written before it is forwarded: it is on record even
if guard dies while it is out, and it is not forwarded if the log cannot be written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine
from typing import Any

from mitmproxy import connection, ctx, http, tcp
from mitmproxy.proxy import server_hooks

from guard import pipeline
from guard.audit.event import FlowRecord
from guard.audit.recorder import Recorder
from guard.net import egress
from guard.proxy import upstreamerror
from guard.proxy.flowstate import FlowState, attach, respond, state_of
from guard.request import Request

log = logging.getLogger("guard")


class EgressGate:
    """``resolve`` looks up the names of allowed requests (a seam for tests)."""

    def __init__(self, recorder: Recorder,
                 resolve: egress.Resolver = egress.system_resolve) -> None:
        self.recorder = recorder
        self.resolve = resolve
        # client id -> {(address, port) guard may connect to: the allowed name it stands for}
        self._allowed: dict[str, dict[tuple[str, int], str]] = {}
        self.upstream_attempts: list[tuple[str, int, bool]] = []  # (host, port, permitted)
        upstreamerror.install(self.upstream_failed)

    def configure(self, updated: set[str]) -> None:
        # Simulated and blocked requests must never cause an upstream handshake: connect
        # only when a request is decided (lazy), and never to learn a certificate.
        if ctx.options.connection_strategy != "lazy":
            ctx.options.connection_strategy = "lazy"
        if ctx.options.upstream_cert:
            ctx.options.upstream_cert = False

    def client_disconnected(self, client: connection.Client) -> None:
        self._allowed.pop(client.id, None)

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        state = state_of(flow)
        if flow.response is not None or state is None or not state.allowed:
            return None
        return self._route(flow, state)  # mitmproxy awaits it: the name lookup

    async def _route(self, flow: http.HTTPFlow, state: FlowState) -> None:
        """Resolve the allowed name and send the request to a permitted address of it;
        refuse it if there is none."""
        try:
            await self._resolve_and_check(flow, state)
        except Exception as e:  # fail closed, as for any other decision
            self._settle(flow, state, pipeline.failed(e, state.decision))

    async def _resolve_and_check(self, flow: http.HTTPFlow, state: FlowState) -> None:
        decision, name, port = state.decision, state.request.host, flow.request.port
        allow_private = bool(decision.rule is not None and decision.rule.rule.allow_private)
        try:
            addresses = await self.resolve(name, port)
        except (OSError, UnicodeError) as e:
            log.info("guard: cannot resolve %s: %s", name, e)
            addresses = []
        route = egress.choose(name, addresses, allow_private=allow_private)
        if route.address is None:
            self._settle(flow, state, pipeline.refused(decision, route.why))
            return
        # AuditError propagates (and fails closed): then it is not forwarded.
        state.request_seq = (await self.recorder.request_async(FlowRecord(
            request=state.request, rule_id=decision.rule_id, action=decision.action,
            reason=decision.reason, started=state.started, policy=state.policy)))["seq"]
        # Only the target changes: the Host header and :authority stay the client's name.
        flow.request.data.host = route.address
        forward_as_decided(flow, state)
        self._allowed.setdefault(flow.client_conn.id, {})[(route.address, port)] = name

    def upstream_failed(self, flow: http.HTTPFlow, error: str) -> http.Response | None:
        """The answer to an allowed request whose upstream failed before answering: guard's
        JSON under rule ``guard.upstream-failed`` (the audit event keeps the allow rule
        that decided, with the error). None for a flow guard did not allow."""
        state = state_of(flow)
        if state is None or not state.allowed:
            return None
        where = f"{state.request.host}:{flow.request.port}"
        refused = error.startswith("guard: upstream connection refused")
        message = (f"guard got no response from {where}, which rule "
                   f"{state.decision.rule_id} allows: {error}")
        state.error = f"upstream failed: {error}"
        log.info("guard: %s", message)
        body = json.dumps({"error": {
            "type": "guard_upstream_failed", "rule": upstreamerror.RULE_ID,
            "allowed_by": state.decision.rule_id, "message": message,
            "reason": "refused by guard" if refused else "the upstream connection failed"}})
        return http.Response.make(502, body, {
            "Content-Type": "application/json", "X-Guard-Rule": upstreamerror.RULE_ID,
            "X-Guard-Action": "error"})

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        """Belt and braces: a WebSocket only on a flow whose rule allowed it."""
        state = state_of(flow)
        rule = state.decision.rule if state is not None and state.allowed else None
        if rule is None or not rule.rule.websocket:
            flow.kill()

    def _settle(self, flow: http.HTTPFlow, state: FlowState,
                outcome: pipeline.Outcome) -> None:
        state.settle(outcome)
        assert outcome.response is not None  # refusals and failures always answer
        respond(flow, outcome.response)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Stream what allowed servers stream (server-sent events, chunked bodies)."""
        state = state_of(flow)
        if state is None or not state.allowed or flow.response is None:
            return
        ctype = flow.response.headers.get("content-type", "")
        if ctype.startswith("text/event-stream") or "chunked" in flow.response.headers.get(
            "transfer-encoding", ""
        ) and not flow.response.headers.get("content-length"):
            flow.response.stream = True

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
            where = f"{address[0]}:{address[1]}" if address is not None else "(no address)"
            data.server.error = ("guard: upstream connection refused: no allow rule decided "
                                 f"a request to {where}")
            log.info("guard: refused upstream connection to %s", where)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        """Raw TCP is never decided by a rule: refused here (the recorder audits it), and
        server_connect refuses its upstream socket in any case."""
        server = flow.server_conn.address
        client = flow.client_conn.peername
        req = Request("TCP", "tcp", str(server[0]) if server else "", server[1] if server else 0,
                      "", client=client[0] if client else "")
        attach(flow, FlowState(req)).settle(pipeline.raw_tcp(req))
        flow.kill()


# Headers for one connection, never for the server behind it (RFC 9110 section 7.6.1), and
# the proxy's own; Upgrade and Connection stay for a WebSocket the rule allows.
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "proxy-authorization",
              "proxy-authenticate", "te", "trailer", "upgrade", "http2-settings")


def forward_as_decided(flow: http.HTTPFlow, state: FlowState) -> None:
    """Send what was decided: the path in its normal form (unless the rule lets ambiguous
    paths through as they are), without hop-by-hop and proxy headers."""
    r, req = flow.request, state.request
    rule = state.decision.rule.rule if state.decision.rule is not None else None
    if req.raw_path and (rule is None or rule.ambiguous_paths != "allow"):
        _, sep, query = r.path.partition("?")
        r.path = req.path + sep + query
    websocket = bool(rule is not None and rule.websocket
                     and r.headers.get("upgrade", "").lower() == "websocket")
    listed = {t.strip().lower() for t in r.headers.get_all("connection") for t in t.split(",")}
    for name in {*HOP_BY_HOP, *listed} - {""}:
        if websocket and name in ("connection", "upgrade"):
            continue
        if name == "te" and r.headers.get("te", "").strip().lower() == "trailers":
            continue  # HTTP/2 allows exactly this one (gRPC needs it)
        if name in r.headers:
            del r.headers[name]
