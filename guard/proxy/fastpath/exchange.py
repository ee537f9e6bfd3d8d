"""One request on the fast path, decided and answered as guard's addons would: the
sandbox proven (:func:`guard.sandbox.identify`), guard's request built as for a flow
(:func:`~guard.proxy.addons.identity.make_request`), guard.internal served as its own
service, everything else through :func:`guard.pipeline.handle` with the Host/SNI check,
faults injected, the X-Guard headers added, and the audit event written (through the
recorder, so the live feed, the console and the metrics see it) before the answer goes
back: an unrecorded request gets the 503 of :func:`guard.pipeline.unrecorded`.

The fast path only carries tunnels to hosts that no rule allows, so it never connects
anywhere. A request that is allowed all the same (its Host and SNI name another host, or
a reload added an allow rule since the tunnel opened) is refused as
``guard.egress-refused``: this connection has nowhere to send it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import cast

from guard import head_limits, internal_host, pipeline
from guard.audit.event import FlowRecord
from guard.decision import Action, Decision
from guard.faults import MAX_DELAY_MS
from guard.head_limits import HeadLimits, Refusal
from guard.limits import LimitExceeded
from guard.net import egress
from guard.proxy.addons import AuditRecorder, GuardInternal, Policy
from guard.proxy.addons.identity import GUARD_HEADERS, SandboxIdentity, authority_name
from guard.proxy.flowstate import UNDECIDED
from guard.proxy.offload import turn
from guard.request import Request
from guard.sandbox import identify
from guard.sandbox.identity import HEADER as SANDBOX_HEADER

log = logging.getLogger("guard")


@dataclass(frozen=True)
class Tunnel:
    """What the connection says: the client's address, the CONNECT's host and port and
    its Proxy-Authorization ("" without), the TLS SNI."""

    client: str
    connect_host: str
    port: int
    proxy_auth: str
    sni: str | None


@dataclass
class Answer:
    """What to send back: ``status`` None means no answer at all (an injected timeout or
    reset: the connection is ended, ``reset`` abruptly)."""

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    reset: bool = False


class Exchange:
    """Answers fast-path requests with guard's parts (the same objects the addons use)."""

    def __init__(self, identity: SandboxIdentity, internal: GuardInternal, policy: Policy,
                 recorder: AuditRecorder, limits: HeadLimits | None = None,
                 max_body: int = 0) -> None:
        self.identity = identity
        self.internal = internal
        self.policy = policy
        self.recorder = recorder
        self.limits = limits or HeadLimits()
        self.max_body = max_body  # --max-body-size (0: the fast path's own bound)
        self.inflight = 0  # requests read and not answered yet (a drain waits for them)

    async def refuse(self, tunnel: Tunnel, refusal: Refusal, method: str, target: str,
                     headers: list[tuple[str, str]], host_header: str | None) -> Answer:
        """A request refused under a named limit before it is decided: audited with a
        bounded copy of it (as the request head addon does), answered, then the
        connection ends."""
        started, t0 = time.time(), time.perf_counter()
        fields = [(k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
                  for k, v in headers]
        req = Request(method[:32], "https",
                      egress.normal_name(authority_name(host_header) or tunnel.sni
                                         or tunnel.connect_host), tunnel.port,
                      head_limits.bounded_path(target.split("?", 1)[0]),
                      headers=head_limits.bounded_headers(fields, omit=GUARD_HEADERS),
                      client=tunnel.client, sni=tunnel.sni)
        try:
            header = next((v for k, v in headers if k.lower() == SANDBOX_HEADER), None)
            who = identify(self.identity.sandbox_from, self.identity.registry,
                           client=tunnel.client, header=header, proxy_auth=tunnel.proxy_auth)
            if who.sandbox:
                req = replace(req, sandbox=who.sandbox)
        except Exception as e:  # the refusal stands; the event names no sandbox
            log.warning("guard: the sandbox of a refused request is unknown: %s", e)
        response = refusal.response()
        headers_out = self._headers(response.headers, response.body, refusal.decision)
        record = FlowRecord(request=req, rule_id=refusal.rule_id, action="block",
                            reason=refusal.reason, status=refusal.status,
                            response_headers=headers_out, response_body=response.body,
                            started=started, duration_ms=(time.perf_counter() - t0) * 1000)
        try:
            await self.recorder.record_async(record)
        except Exception as e:
            _, failed = pipeline.unrecorded(e)
            return Answer(failed.status, with_length(list(failed.headers), failed.body),
                          failed.body)
        return Answer(refusal.status, headers_out, response.body)

    async def answer(self, tunnel: Tunnel, method: str, target: str,
                     headers: list[tuple[str, str]], body: bytes,
                     host_header: str | None) -> Answer:
        """Decide and answer one request; its audit event is written when this returns."""
        started, t0 = time.time(), time.perf_counter()
        ctx = self.policy.ctx
        names = pipeline.Names(authority_name(host_header), tunnel.sni, False)
        req = Request(method, "https", tunnel.connect_host, tunnel.port,
                      target.split("?", 1)[0], client=tunnel.client,
                      sandbox="")  # none proven yet: a refusal before identity names none
        try:
            header = next((v for k, v in headers if k.lower() == SANDBOX_HEADER), None)

            # a shared registry's version is read with a non-blocking client (no thread
            # hop); the rest is this process's memory
            registry = self.identity.registry
            view = await registry.view_async() if self.identity.offload is not None \
                else registry
            who = identify(self.identity.sandbox_from, view, client=tunnel.client,
                           header=header, proxy_auth=tunnel.proxy_auth)
            if not target.startswith("/"):
                raise ValueError(f"request target {target[:100]!r} is not a path")
            ce = next((v for k, v in headers if k.lower() == "content-encoding"), "")
            try:
                unpacked = self.identity.unpack(body, ce)
            except LimitExceeded:  # unpacks too far: audited as it was sent, refused
                req = self.identity.build(method, "https", names.host_header, tunnel.sni,
                                          tunnel.connect_host, tunnel.port, target, headers,
                                          body, tunnel.client, who.sandbox or "")
                raise
            req = self.identity.build(method, "https", names.host_header, tunnel.sni,
                                      tunnel.connect_host, tunnel.port, target, headers,
                                      unpacked, tunnel.client, who.sandbox or "")
        except Exception as e:  # unreadable: fail closed (and audit it), as the addons do
            outcome = pipeline.failed(e, UNDECIDED)
        else:
            if req.host == internal_host.HOST:
                done, value = self.internal.decide(req, who)
                outcome = cast(pipeline.Outcome, value) if done else \
                    await cast(Awaitable[pipeline.Outcome], value)
                if outcome.pending is not None:
                    try:
                        outcome = pipeline.Outcome(outcome.decision, await outcome.pending,
                                                   policy=outcome.policy)
                    except Exception as e:
                        outcome = pipeline.failed(e, outcome.decision)
            elif self.policy.offload is not None:  # as a greenlet (guard.proxy.offload)
                decided = req
                done, value = self.policy.offload.start(
                    turn(req),
                    lambda: pipeline.handle(decided, ctx, identity=who, names=names))
                outcome = cast(pipeline.Outcome, value) if done else \
                    await cast(Awaitable[pipeline.Outcome], value)
            else:
                outcome = pipeline.handle(req, ctx, identity=who, names=names)
            if req.host != internal_host.HOST and self.policy.metrics is not None:
                self.policy.metrics.observe_decision(outcome.decision.action,
                                                     time.perf_counter() - t0)
            if outcome.decision.action is Action.ALLOW:
                outcome = pipeline.refused(outcome.decision, (
                    f"this connection was opened to {tunnel.connect_host}, which guard "
                    f"answers itself; open one to {req.host} to be let through"))
        fault = outcome.fault
        error = outcome.error
        response = outcome.response
        if fault is not None and (fault.delay_ms or fault.kind in ("timeout", "reset")):
            await asyncio.sleep(min(fault.delay_ms, MAX_DELAY_MS) / 1000)
            if fault.kind in ("timeout", "reset"):
                error, response = f"guard injected a {fault.kind}", None
        answer = Answer(None, [], b"", reset=fault is not None and fault.kind == "reset")
        if response is not None:
            answer = Answer(response.status, self._headers(response.headers, response.body,
                                                           outcome.decision),
                            response.body)
        record = FlowRecord(
            request=req, rule_id=outcome.decision.rule_id, action=outcome.decision.action,
            reason=outcome.decision.reason, status=answer.status,
            response_headers=answer.headers, response_body=answer.body, upstream=False,
            started=started, duration_ms=(time.perf_counter() - t0) * 1000,
            changes=list(outcome.changes), error=error, policy=outcome.policy,
            fault=fault.as_dict() if fault is not None else None)
        try:
            await self.recorder.record_async(record)  # large ones off the loop
        except Exception as e:  # an unrecorded request does not get its answer
            _, failed = pipeline.unrecorded(e)
            return Answer(failed.status, with_length(list(failed.headers), failed.body),
                          failed.body)
        if answer.status is not None:
            for effect in outcome.effects:
                self.policy.schedule(effect)
        return answer

    def _headers(self, headers: list[tuple[str, str]] | tuple[tuple[str, str], ...],
                 body: bytes, decision: Decision) -> list[tuple[str, str]]:
        """The headers mitmproxy would send: Content-Length set as ``Response.make`` sets
        it, then the policy addon's X-Guard headers."""
        out = with_length(list(headers), body)
        if self.policy.guard_headers and not any(k.lower() == "x-guard-rule" for k, _ in out):
            out += [("X-Guard-Rule", decision.rule_id), ("X-Guard-Action", decision.action)]
        return out


def with_length(headers: list[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
    """``headers`` with one Content-Length, the body's, where the first one was (or last)."""
    out: list[tuple[str, str]] = []
    placed = False
    for k, v in headers:
        if k.lower() == "content-length":
            if not placed:
                out.append((k, str(len(body))))
                placed = True
            continue
        out.append((k, v))
    if not placed:
        out.append(("content-length", str(len(body))))
    return out
