"""The policy addon: every flow not already answered goes through
:func:`guard.pipeline.handle`; simulate, block and fail-closed answers are sent from
here, after-response effects (webhook deliveries) are scheduled here. An allowed flow
gets no answer: the egress gate routes it."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, cast

from mitmproxy import http
from mitmproxy.proxy import mode_specs

from guard import pipeline
from guard.engine import Engine
from guard.faults import MAX_DELAY_MS
from guard.metrics import Metrics
from guard.proxy.addons.identity import bare_request, host_header_name
from guard.proxy.flowstate import FlowState, attach, respond, state_of
from guard.proxy.offload import Offload, turn
from guard.synth.context import Effect

log = logging.getLogger("guard")


class Policy:
    """``ctx.packs`` may be swapped at any time (hot reload): a request keeps the packs
    it started with."""

    def __init__(self, ctx: pipeline.Context, *, guard_headers: bool = True,
                 metrics: Metrics | None = None, offload: Offload | None = None) -> None:
        self.ctx = ctx
        self.guard_headers = guard_headers
        self.metrics = metrics  # times each decision (the admin listener's /metrics)
        self.offload = offload  # simulations as greenlets on the loop (guard.proxy.offload)
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def engine(self) -> Engine:
        return self.ctx.packs.engine

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        if flow.response is not None:
            return None
        state = state_of(flow)
        if state is None:  # the identity addon failed outright: fail closed all the same
            state = attach(flow, FlowState(bare_request(flow)))
            state.unreadable = RuntimeError("guard could not read this flow")
        if state.outcome is not None:
            return None  # answered already (guard.internal)
        if state.unreadable is not None:
            return self._answer(flow, state, pipeline.failed(state.unreadable,
                                                             state.decision))
        transparent = isinstance(flow.client_conn.proxy_mode, mode_specs.TransparentMode)
        names = pipeline.Names(host_header_name(flow), flow.client_conn.sni, transparent)
        if self.offload is not None:
            return self._offloaded(flow, state, names)
        t0 = time.perf_counter()
        outcome = pipeline.handle(state.request, self.ctx, identity=state.identity,
                                  names=names)
        self._observe(outcome, t0)
        return self._answer(flow, state, outcome)

    def _offloaded(self, flow: http.HTTPFlow, state: FlowState,
                   names: pipeline.Names) -> Coroutine[Any, Any, None] | None:
        """The pipeline as a greenlet on the loop, one request of a sandbox at a time: the
        answer now when it ran to its end without waiting, else once it has ended."""
        assert self.offload is not None
        req, identity = state.request, state.identity
        t0 = time.perf_counter()
        try:
            done, value = self.offload.start(
                turn(req),
                lambda: pipeline.handle(req, self.ctx, identity=identity, names=names))
        except Exception as e:  # guard's own bug: fail closed
            done, value = True, pipeline.failed(e, state.decision)
        if done:
            assert isinstance(value, pipeline.Outcome)
            self._observe(value, t0)
            return self._answer(flow, state, value)
        return self._handle_later(flow, state, cast(Awaitable[pipeline.Outcome], value), t0)

    async def _handle_later(self, flow: http.HTTPFlow, state: FlowState,
                            pending: Awaitable[pipeline.Outcome], t0: float) -> None:
        try:
            outcome = await pending
        except Exception as e:  # guard's own bug, or shutting down: fail closed
            outcome = pipeline.failed(e, state.decision)
        self._observe(outcome, t0)
        later = self._answer(flow, state, outcome)
        if later is not None:
            await later

    def _observe(self, outcome: pipeline.Outcome, t0: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_decision(outcome.decision.action, time.perf_counter() - t0)

    def _answer(self, flow: http.HTTPFlow, state: FlowState,
                outcome: pipeline.Outcome) -> Coroutine[Any, Any, None] | None:
        state.settle(outcome)
        fault = outcome.fault
        if fault is not None and (fault.delay_ms or fault.kind in ("timeout", "reset")):
            return self._faulty(flow, state, outcome)  # mitmproxy awaits it
        if outcome.response is not None:
            respond(flow, outcome.response)
            for effect in outcome.effects:
                self.schedule(effect)
        return None

    async def _faulty(self, flow: http.HTTPFlow, state: FlowState,
                      outcome: pipeline.Outcome) -> None:
        """An answer with an injected fault (guard.faults): after its delay the answer, or
        for a timeout or reset none at all (the recorder audits the killed flow)."""
        fault = outcome.fault
        assert fault is not None
        await asyncio.sleep(min(fault.delay_ms, MAX_DELAY_MS) / 1000)
        if fault.kind in ("timeout", "reset"):
            state.error = f"guard injected a {fault.kind}"
            flow.kill()
            return
        if outcome.response is not None:
            respond(flow, outcome.response)
            for effect in outcome.effects:
                self.schedule(effect)

    def response(self, flow: http.HTTPFlow) -> None:
        state = state_of(flow)
        if state is None or flow.response is None or not self.guard_headers:
            return
        if "X-Guard-Rule" not in flow.response.headers:
            flow.response.headers["X-Guard-Rule"] = state.decision.rule_id
            flow.response.headers["X-Guard-Action"] = state.decision.action

    def schedule(self, effect: Effect) -> None:
        """Run an after-response effect (a webhook delivery) on the loop; failures are
        logged."""
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
