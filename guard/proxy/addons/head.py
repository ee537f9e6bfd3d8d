"""The request head addon, the first of guard's: it attaches the flow state as soon as a
request's head is read (so a request that fails later, in its body, is still audited),
and refuses under a named rule, before anything reads their content,

- a head over the size limits (:mod:`guard.head_limits`): 414 ``guard.url-too-long``,
  431 ``guard.header-too-large``, whether the head ended (``requestheaders``,
  ``http_connect``) or is still arriving (``guard_head_too_large``, from
  :mod:`guard.proxy.http1`);
- a request with trailers: 400 ``guard.request-trailers``;
- a request guard could not read to its end (a broken chunked body, the client gone):
  audited as ``guard.request-unreadable`` (with a 400 when the client can still read one).

Every refusal is audited with a bounded copy of the request, and its sandbox.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from mitmproxy import http
from mitmproxy.net.http import url

from guard import head_limits, pipeline
from guard.audit.event import FlowRecord
from guard.audit.recorder import Recorder
from guard.head_limits import HeadLimits, Refusal
from guard.net import egress
from guard.proxy import http1
from guard.proxy.addons.identity import GUARD_HEADERS, SandboxIdentity, bare_request
from guard.proxy.flowstate import UNDECIDED, FlowState, attach, respond, state_of
from guard.request import Request

log = logging.getLogger("guard")


class RequestHead:
    def __init__(self, limits: HeadLimits, identity: SandboxIdentity, recorder: Recorder,
                 *, guard_headers: bool = True) -> None:
        self.limits = limits
        self.identity = identity
        self.recorder = recorder
        self.guard_headers = guard_headers  # X-Guard-Rule/-Action on answers sent from here

    def load(self, loader: Any) -> None:
        loader.add_option(http1.HEAD_OPTION, int, 0, "guard: refuse a request head still "
                          "incomplete past this many bytes (0: no limit)")

    def http_connect(self, flow: http.HTTPFlow) -> None:
        refusal = self._check(flow)
        if refusal is None:
            return
        state = self._refuse(flow, refusal)
        state.recorded = True  # a refused CONNECT has no response hook: written here
        try:
            self.recorder.flow(FlowRecord(state.request, refusal.rule_id, "block",
                                          refusal.reason, status=refusal.status,
                                          started=state.started))
        except Exception as e:
            _, answer = pipeline.unrecorded(e)
            respond(flow, answer)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or state_of(flow) is not None:
            return
        refusal = self._check(flow)
        if refusal is not None:
            self._refuse(flow, refusal)
        else:
            attach(flow, FlowState(bare_request(flow)))

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and flow.request.trailers:
            self._refuse(flow, head_limits.TRAILERS, whole=True)

    def error(self, flow: http.HTTPFlow) -> None:
        """A request that ended before it was decided: audited under its own rule."""
        state = state_of(flow)
        if (state is None or state.outcome is not None or flow.error is None
                or state.decision is not UNDECIDED):  # named already (the limits addon)
            return
        refusal = head_limits.unreadable(flow.error.msg)
        state.settle(pipeline.Outcome(refusal.decision, error=flow.error.msg))
        if state.identity is None:  # it ended before the identity addon saw it
            try:
                state.identity = self.identity.identify(flow)
                if state.identity.sandbox:
                    state.request = _in_sandbox(state.request, state.identity.sandbox)
            except Exception as e:
                log.warning("guard: the sandbox of an unreadable request is unknown: %s", e)

    def guard_head_too_large(self, data: http1.HeadTooLarge) -> None:
        if data.problem:
            refusal = head_limits.unreadable(data.problem)
        elif data.line_ended:
            refusal = head_limits.header_refusal(self.limits.header_bytes)
        else:
            refusal = head_limits.url_refusal(self.limits.url_bytes)
        req = self._partial_request(data)
        try:
            self.recorder.flow(FlowRecord(req, refusal.rule_id, "block", refusal.reason,
                                          status=refusal.status))
            response = refusal.response()
            if self.guard_headers:
                response.headers += [("X-Guard-Rule", refusal.rule_id),
                                     ("X-Guard-Action", "block")]
            data.response = http1.wire(response)
        except Exception as e:
            _, answer = pipeline.unrecorded(e)
            data.response = http1.wire(answer)

    # what is refused, and how

    def _check(self, flow: http.HTTPFlow) -> Refusal | None:
        r = flow.request.data
        return self.limits.check(url_bytes=len(r.path) + len(r.authority) + len(r.host),
                                 header_bytes=head_limits.header_bytes(r.headers.fields))

    def _refuse(self, flow: http.HTTPFlow, refusal: Refusal, *,
                whole: bool = False) -> FlowState:
        """Answer ``flow`` with ``refusal``. Its audit event holds a bounded copy of the
        request, or (``whole``, for a head within the limits) the request as guard reads
        every other."""
        state = state_of(flow) or attach(flow, FlowState(self._bounded(flow)))
        if state.identity is None:
            try:
                state.identity = self.identity.identify(flow)
                sandbox = state.identity.sandbox
                if whole:
                    state.request = self.identity.to_request(flow, sandbox or "")
                elif sandbox:
                    state.request = _in_sandbox(state.request, sandbox)
            except Exception as e:  # the refusal stands; the event names no sandbox
                log.warning("guard: the sandbox of a refused request is unknown: %s", e)
        response = refusal.response()
        state.settle(pipeline.Outcome(refusal.decision, response))
        respond(flow, response)
        return state

    def _bounded(self, flow: http.HTTPFlow) -> Request:
        r = flow.request
        peer = flow.client_conn.peername
        host = _host(flow)
        path = r.data.path[:head_limits.KEPT_PATH * 4].decode("utf-8", "surrogateescape")
        return Request(method=r.data.method[:32].decode("latin-1"), scheme=r.scheme,
                       host=host, port=r.port,
                       path=head_limits.bounded_path(path.split("?", 1)[0]),
                       headers=head_limits.bounded_headers(r.headers.fields,
                                                           omit=GUARD_HEADERS),
                       client=str(peer[0]) if peer else "", sni=flow.client_conn.sni)

    def _partial_request(self, data: http1.HeadTooLarge) -> Request:
        """What a head still arriving says: its request line (as much as came) and, when
        it is within the part kept, its Host header."""
        line, _, rest = data.head.partition(b"\n")
        parts = line.rstrip(b"\r").split(b" ")
        method = parts[0][:32].decode("latin-1") if parts[0] else "?"
        target = parts[1].decode("utf-8", "surrogateescape") if len(parts) > 1 else ""
        scheme = "https" if data.client.tls_established else "http"
        host, port = "", 443 if scheme == "https" else 80
        if "://" in target:
            scheme, _, rest_target = target.partition("://")
            authority, slash, path = rest_target.partition("/")
            target = slash + path
            host, colon, digits = authority.rpartition(":")
            if not colon or not digits.isdigit():
                host, digits = authority, ""
            port = int(digits[:5]) if digits else (443 if scheme == "https" else 80)
        elif data.server is not None:
            host, port = data.server[0], data.server[1]
        if not host:
            for header in rest.split(b"\n"):
                field, sep, raw = header.partition(b":")
                if sep and field.strip().lower() == b"host":
                    host = raw.strip().decode("utf-8", "surrogateescape").rsplit(":", 1)[0]
                    break
        host = data.client.sni or host
        peer = data.client.peername
        client = str(peer[0]) if peer else ""
        req = Request(method=method, scheme=scheme[:8], host=_normal(host), port=port,
                      path=head_limits.bounded_path(target.split("?", 1)[0]) or "/",
                      client=client, sni=data.client.sni)
        try:
            found = self.identity.identify_client(data.client)
        except Exception as e:
            log.warning("guard: the sandbox of a refused request is unknown: %s", e)
            return req
        return _in_sandbox(req, found.sandbox) if found.sandbox else req


def _in_sandbox(req: Request, sandbox: str) -> Request:
    return replace(req, sandbox=sandbox)


def _host(flow: http.HTTPFlow) -> str:
    value = flow.request.host_header
    name = ""
    if value:
        try:
            name = url.parse_authority(value[:512], check=False)[0]
        except ValueError:
            name = ""
    return _normal(name or flow.client_conn.sni or flow.request.host)


def _normal(host: str) -> str:
    try:
        return egress.normal_name(host[:256])
    except Exception:
        return host[:256]
