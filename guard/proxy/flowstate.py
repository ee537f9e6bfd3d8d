"""What guard's addons know about one flow, shared through ``flow.metadata``.

One typed entry, under one key: :func:`state_of` returns it (or None for a flow guard
has not seen), :func:`attach` puts it there. The identity addon attaches it; the policy
addon (or the guard.internal addon) fills in the outcome; the egress gate reads whether
it may connect; the recorder writes it to the audit log when the flow ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import flow as mflow
from mitmproxy import http

from guard.decision import Action, Decision
from guard.pipeline import ERROR_RULE_ID, Outcome
from guard.request import Request, Response
from guard.sandbox import Identity
from guard.world.store import Change

META = "guard"  # the flow.metadata key; its value is always a FlowState

UNDECIDED = Decision(Action.ERROR, ERROR_RULE_ID, "")


@dataclass
class FlowState:
    """One flow as guard sees it. ``decision`` is the final word (what the audit log says);
    ``outcome`` is set once the pipeline has answered; ``identity`` is how the sandbox
    was proven (or why not); ``unreadable`` holds the exception when the flow could not be
    converted into a :class:`Request`."""

    request: Request
    started: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    decision: Decision = UNDECIDED
    outcome: Outcome | None = None
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    identity: Identity | None = None
    request_seq: int | None = None  # the request event of an allowed flow (written first)
    unreadable: BaseException | None = None
    recorded: bool = False

    @property
    def policy(self) -> str | None:
        """The sandbox's policy label, named in its audit event."""
        return self.outcome.policy if self.outcome is not None else None

    @property
    def fault(self) -> dict[str, Any] | None:
        """What guard.faults injected into the answer, named in its audit event."""
        fault = self.outcome.fault if self.outcome is not None else None
        return fault.as_dict() if fault is not None else None

    def settle(self, outcome: Outcome) -> None:
        """Take the pipeline's outcome as this flow's."""
        self.outcome, self.decision, self.error = outcome, outcome.decision, outcome.error
        self.changes = list(outcome.changes)

    @property
    def allowed(self) -> bool:
        return self.decision.action is Action.ALLOW


def state_of(flow: mflow.Flow) -> FlowState | None:
    state = flow.metadata.get(META)
    return state if isinstance(state, FlowState) else None


def attach(flow: mflow.Flow, state: FlowState) -> FlowState:
    flow.metadata[META] = state
    return state


def respond(flow: http.HTTPFlow, response: Response) -> None:
    """Answer the flow with guard's own response (it never goes upstream)."""
    headers = http.Headers([(k.encode(), v.encode()) for k, v in response.headers])
    flow.response = http.Response.make(response.status, response.body, headers)
