"""guard's addons, one job each, in the order the master loads them::

    Limits           connections per client, the header-read timeout, the body limit's audit
    RequestHead      attaches the flow state when the head is read; refuses heads over
                     the size limits (431/414), trailers (400); audits unreadable requests
    SandboxIdentity  names the sandbox, turns the flow into guard's Request (attaches state)
    GuardInternal    answers guard.internal itself (through the pipeline), never forwarded
    Policy           decides everything else through guard.pipeline; answers simulate,
                     block and errors; runs after-response effects; X-Guard-* headers
    EgressGate       routes allowed requests to a checked address; server_connect lets only
                     those connect; raw TCP is refused
    AuditRecorder    writes every flow to the audit log when it ends (fail closed)
    Reload, DnsStub, SmtpSinkService   services with running/done

They share one :class:`~guard.proxy.flowstate.FlowState` per flow through
``flow.metadata``.
"""

from guard.proxy.addons.egress import EgressGate
from guard.proxy.addons.head import RequestHead
from guard.proxy.addons.identity import SandboxIdentity
from guard.proxy.addons.internal import GuardInternal
from guard.proxy.addons.limits import Limits
from guard.proxy.addons.policy import Policy
from guard.proxy.addons.recorder import AuditRecorder
from guard.proxy.addons.services import DnsStub, Reload, SmtpSinkService

__all__ = ["AuditRecorder", "DnsStub", "EgressGate", "GuardInternal", "Limits", "Policy",
           "Reload", "RequestHead", "SandboxIdentity", "SmtpSinkService"]
