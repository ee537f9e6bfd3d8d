"""guard's addons one by one, with mitmproxy's own test flows: each does its one job, and
each fails closed when the one before it did not do its own."""

from __future__ import annotations

import json

import pytest
from mitmproxy.addons import proxyserver, tlsconfig
from mitmproxy.flow import Error
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import taddons, tflow

from guard import internal_host, pipeline
from guard.audit.event import EventBuilder
from guard.audit.recorder import Recorder
from guard.audit.writer import AuditWriter
from guard.options import SandboxFrom
from guard.packs import load_packs
from guard.proxy.addons import EgressGate, GuardInternal, Policy, SandboxIdentity
from guard.proxy.flowstate import FlowState, state_of
from guard.request import Request
from guard.sandbox import Registry
from guard.synth.simulator import Simulator
from guard.world import MemoryStore

RECORDER = Recorder(AuditWriter(None), EventBuilder())


@pytest.fixture(scope="module")
def ctx() -> pipeline.Context:
    return pipeline.Context(load_packs([]), Simulator(MemoryStore(seed=1)))


def stripe_flow():
    f = tflow.tflow()
    f.request.host, f.request.port, f.request.scheme = "api.stripe.com", 443, "https"
    f.request.headers["host"] = "api.stripe.com"
    f.client_conn.sni = "api.stripe.com"
    f.request.path, f.request.method = "/v1/customers", "POST"
    f.request.headers["authorization"] = "Bearer sk_test_1"
    f.request.headers["content-type"] = "application/x-www-form-urlencoded"
    f.request.content = b"email=a%40b.c"
    return f


def test_identity_attaches_the_request_and_strips_guards_headers():
    f = stripe_flow()
    f.request.headers["x-guard-sandbox"] = "someone"
    f.request.headers["proxy-authorization"] = "Basic eDp5"
    SandboxIdentity(SandboxFrom.CLIENT, Registry()).request(f)
    state = state_of(f)
    assert state is not None and state.request.host == "api.stripe.com"
    assert state.request.sandbox == f.client_conn.peername[0]  # the address, not the header
    assert "x-guard-sandbox" not in f.request.headers
    assert "proxy-authorization" not in f.request.headers


def test_policy_answers_a_simulated_request_through_the_pipeline(ctx):
    f = stripe_flow()
    SandboxIdentity(SandboxFrom.CLIENT, Registry()).request(f)
    Policy(ctx).request(f)
    assert f.response is not None and f.response.status_code == 200
    assert state_of(f).decision.rule_id == "stripe.customers.create"


def test_policy_fails_closed_when_the_identity_addon_did_not_run(ctx):
    f = stripe_flow()  # no state attached: as if the identity addon had crashed
    Policy(ctx).request(f)
    assert f.response is not None and f.response.status_code == 500
    assert json.loads(f.response.content)["error"]["rule"] == pipeline.ERROR_RULE_ID


def test_guard_internal_is_answered_before_the_policy_and_only_there(ctx):
    f = tflow.tflow()
    f.request.host, f.request.path = internal_host.HOST, "/"
    f.request.headers["host"] = internal_host.HOST
    f.client_conn.sni = None
    SandboxIdentity(SandboxFrom.CLIENT, Registry()).request(f)
    GuardInternal(ctx, ctx.simulator.worlds).request(f)
    assert f.response is not None and f.response.status_code == 200
    answered = f.response
    Policy(ctx).request(f)  # the policy leaves an answered flow alone
    assert f.response is answered and state_of(f).decision.rule_id == internal_host.RULE_ID


def test_the_egress_gate_refuses_every_connection_it_did_not_route():
    gate = EgressGate(RECORDER)
    with taddons.context(gate):
        data = ServerConnectionHookData(tflow.tserver_conn(), tflow.tclient_conn())
        gate.server_connect(data)
    assert data.server.error and "refused" in data.server.error
    assert gate.upstream_attempts[-1][2] is False


def test_the_egress_gate_does_not_route_a_flow_that_is_not_allowed(ctx):
    f = stripe_flow()
    SandboxIdentity(SandboxFrom.CLIENT, Registry()).request(f)
    Policy(ctx).request(f)  # simulated
    assert EgressGate(RECORDER).request(f) is None


def test_raw_tcp_is_refused_by_the_gate():
    f = tflow.ttcpflow()
    gate = EgressGate(RECORDER)
    gate.tcp_start(f)
    state = state_of(f)
    assert isinstance(state, FlowState) and state.decision.rule_id == pipeline.RAW_TCP_RULE_ID
    assert f.error is not None and f.error.msg == Error.KILLED_MESSAGE


def test_the_gate_keeps_connections_lazy_and_upstream_certificates_off():
    gate = EgressGate(RECORDER)
    with taddons.context(proxyserver.Proxyserver(), tlsconfig.TlsConfig(), gate) as tctx:
        tctx.configure(gate, connection_strategy="eager", upstream_cert=True)
        assert tctx.options.connection_strategy == "lazy"
        assert tctx.options.upstream_cert is False


def test_a_flow_state_is_the_only_thing_under_the_metadata_key():
    f = tflow.tflow()
    f.metadata["guard"] = "a string someone else put there"
    assert state_of(f) is None
    assert isinstance(FlowState(Request("GET", "https", "x.test", 443, "/")).started, float)
