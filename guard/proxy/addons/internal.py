"""The guard.internal addon: guard answers agents about their own sandbox at
``guard.internal`` (:mod:`guard.internal_host`), before any rule, never forwarded. The
answer goes through the pipeline as one of guard's own services, so the audit-log check
and failing closed are the same as for every other request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any

from mitmproxy import http

from guard import internal_host, pipeline
from guard.proxy.flowstate import FlowState, respond, state_of
from guard.request import Response
from guard.world.store import WorldStore

log = logging.getLogger("guard")


class GuardInternal:
    def __init__(self, ctx: pipeline.Context, worlds: WorldStore,
                 ca: Path | None = None) -> None:
        self.ctx = ctx
        self.host = internal_host.InternalHost(worlds, ca)
        self.service = pipeline.Service(
            internal_host.RULE_ID, f"answered by guard itself ({internal_host.HOST})",
            self.host.handle)

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        state = state_of(flow)
        if (flow.response is not None or state is None or state.outcome is not None
                or state.unreadable is not None or state.request.host != internal_host.HOST):
            return None
        outcome = pipeline.handle(state.request, self.ctx, identity=state.identity,
                                  service=self.service)
        state.settle(outcome)
        if outcome.pending is not None:
            return self._answer_later(flow, state, outcome.pending)
        if outcome.response is not None:
            respond(flow, outcome.response)
        return None

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
