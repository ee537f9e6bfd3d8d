"""The guard.internal addon: guard answers agents about their own sandbox at
``guard.internal`` (:mod:`guard.internal_host`), before any rule, never forwarded. The
answer goes through the pipeline as one of guard's own services, so the audit-log check
and failing closed are the same as for every other request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any, Literal, cast

from mitmproxy import http

from guard import internal_host, pipeline
from guard.proxy.flowstate import FlowState, respond, state_of
from guard.proxy.offload import Offload, turn
from guard.request import Request, Response
from guard.sandbox.identity import Identity
from guard.world.store import WorldStore

log = logging.getLogger("guard")


class GuardInternal:
    def __init__(self, ctx: pipeline.Context, worlds: WorldStore,
                 ca: Path | None = None, offload: Offload | None = None) -> None:
        self.ctx = ctx
        self.host = internal_host.InternalHost(worlds, ca)
        self.service = pipeline.Service(
            internal_host.RULE_ID, f"answered by guard itself ({internal_host.HOST})",
            self.host.handle)
        # its answers read the sandbox's world (the outbox, the whole world): as a greenlet
        # taking turns with the sandbox's own requests, as simulations run
        self.offload = offload

    def decide(self, req: Request, identity: Identity | None) -> \
            tuple[Literal[True], pipeline.Outcome] | \
            tuple[Literal[False], Awaitable[pipeline.Outcome]]:
        """The pipeline's outcome for ``req`` (to guard.internal): now, or to await."""
        def handle() -> pipeline.Outcome:
            return pipeline.handle(req, self.ctx, identity=identity, service=self.service)

        if self.offload is None:
            return True, handle()
        return self.offload.start(turn(req), handle)

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        state = state_of(flow)
        if (flow.response is not None or state is None or state.outcome is not None
                or state.unreadable is not None or state.request.host != internal_host.HOST):
            return None
        try:
            done, value = self.decide(state.request, state.identity)
        except Exception as e:  # guard's own bug: fail closed
            done, value = True, pipeline.failed(e, state.decision)
        if not done:
            return self._decided_later(flow, state, cast(Awaitable[pipeline.Outcome], value))
        return self._settle(flow, state, cast(pipeline.Outcome, value))

    def _settle(self, flow: http.HTTPFlow, state: FlowState,
                outcome: pipeline.Outcome) -> Coroutine[Any, Any, None] | None:
        state.settle(outcome)
        if outcome.pending is not None:
            return self._answer_later(flow, state, outcome.pending)
        if outcome.response is not None:
            respond(flow, outcome.response)
        return None

    async def _decided_later(self, flow: http.HTTPFlow, state: FlowState,
                             pending: Awaitable[pipeline.Outcome]) -> None:
        try:
            outcome = await pending
        except Exception as e:
            outcome = pipeline.failed(e, state.decision)
        later = self._settle(flow, state, outcome)
        if later is not None:
            await later

    async def _answer_later(self, flow: http.HTTPFlow, state: FlowState,
                            answer: Awaitable[Response]) -> None:
        """mitmproxy awaits a coroutine returned by a hook: the SSE long poll waits here."""
        try:
            respond(flow, await answer)
        except Exception as e:
            failed = pipeline.failed(e, state.decision)
            state.settle(failed)
            assert failed.response is not None
            respond(flow, failed.response)
