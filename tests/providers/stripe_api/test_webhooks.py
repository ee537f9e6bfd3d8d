"""Events and webhook delivery: signed so stripe.Webhook.construct_event verifies them, and
only ever sent to loopback or allow-listed hosts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from guard.providers.stripe import webhooks
from guard.providers.stripe.webhooks import Refused, target
from guard.proxy.addons.deliveries import RULE
from tests.providers.stripe_api.conftest import sdk

DEADLINE = 20.0  # seconds to wait for an asynchronous delivery (not a performance bound)


class Receiver:
    """A loopback webhook receiver recording what it gets."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first  # answer this many POSTs with a 500 first
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.arrived:
                    outer.received.append((body, dict(self.headers)))
                    outer.arrived.notify_all()
                    failing = len(outer.received) <= outer.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/stripe/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[tuple[bytes, dict[str, str]]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, DEADLINE)
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _deliveries(g: Any, count: int) -> list[dict[str, Any]]:
    world = g.worlds.world("127.0.0.1")
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        found = world.list("stripe.webhook_deliveries")
        if len(found) >= count:
            return found
        time.sleep(0.05)
    return world.list("stripe.webhook_deliveries")


def test_events_are_delivered_signed_so_construct_event_verifies_them(stripe_guard, receiver):
    c, g = stripe_guard
    endpoint = c.v1.webhook_endpoints.create({
        "url": receiver.url, "enabled_events": ["payment_intent.succeeded", "charge.succeeded"]})
    assert endpoint.secret.startswith("whsec_") and endpoint.status == "enabled"
    assert "secret" not in c.v1.webhook_endpoints.retrieve(endpoint.id)

    pi = c.v1.payment_intents.create({"amount": 2500, "currency": "usd", "confirm": True,
                                      "payment_method": "pm_card_visa"})
    got = receiver.wait_for(2)
    assert len(got) == 2
    events = [stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"],
                                             endpoint.secret) for body, headers in got]
    assert sorted(e.type for e in events) == ["charge.succeeded", "payment_intent.succeeded"]
    succeeded = next(e for e in events if e.type == "payment_intent.succeeded")
    assert succeeded.data.object.id == pi.id and succeeded.data.object.status == "succeeded"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(got[0][0].decode(), got[0][1]["Stripe-Signature"],
                                       "whsec_wrong")

    listed = c.v1.events.list({"type": "payment_intent.succeeded"})
    assert [e.id for e in listed.data] == [succeeded.id]
    assert c.v1.events.retrieve(succeeded.id).data.object.amount == 2500
    records = _deliveries(g, 2)
    assert {r["status"] for r in records} == {200}
    assert g.upstream_attempts == []


def test_every_state_change_is_an_event(stripe_guard):
    c, _ = stripe_guard
    customer = c.v1.customers.create({"email": "e@example.com"})
    c.v1.customers.update(customer.id, {"name": "Eve"})
    pi = c.v1.payment_intents.create({"amount": 1000, "currency": "usd", "confirm": True,
                                      "payment_method": "pm_card_visa"})
    c.v1.refunds.create({"payment_intent": pi.id})
    types = [e.type for e in c.v1.events.list({"limit": 100}).auto_paging_iter()]
    assert list(reversed(types)) == [
        "customer.created", "customer.updated", "payment_intent.created", "charge.succeeded",
        "payment_intent.succeeded", "refund.created", "charge.refunded"]
    updated = c.v1.events.list({"type": "customer.updated"}).data[0]
    assert updated.data.previous_attributes["name"] is None


def test_an_endpoint_on_a_host_that_is_not_allowed_is_never_contacted(stripe_guard, upstream):
    c, g = stripe_guard
    c.v1.webhook_endpoints.create({"url": "https://hooks.example.com/stripe",
                                   "enabled_events": ["*"]})
    c.v1.webhook_endpoints.create({"url": f"http://169.254.169.254:{upstream.port}/x",
                                   "enabled_events": ["*"]})
    c.v1.customers.create({"email": "x@example.com"})
    records = _deliveries(g, 2)
    assert len(records) == 2
    assert all(r["status"] is None and r["error"].startswith("not delivered") for r in records)
    assert g.upstream_attempts == [] and upstream.connections == 0
    event = c.v1.events.list().data[0]
    assert event.pending_webhooks == 2  # never delivered


def test_a_disabled_or_deleted_endpoint_gets_nothing(stripe_guard, receiver):
    c, g = stripe_guard
    kept = c.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
    off = c.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
    c.v1.webhook_endpoints.update(off.id, {"disabled": True})
    gone = c.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
    assert c.v1.webhook_endpoints.delete(gone.id).deleted is True
    c.v1.customers.create()
    got = receiver.wait_for(1)
    event = stripe.Webhook.construct_event(got[0][0].decode(), got[0][1]["Stripe-Signature"],
                                           kept.secret)
    assert event.type == "customer.created"
    assert [w.id for w in c.v1.webhook_endpoints.list().data] == [off.id, kept.id]
    assert len(_deliveries(g, 1)) == 1


@pytest.mark.parametrize("url, client, allow, expect", [
    ("http://localhost:4242/hook", "127.0.0.1", (), ("127.0.0.1", 4242, "/hook")),
    ("http://127.0.0.1:8000/a?b=c", "", (), ("127.0.0.1", 8000, "/a?b=c")),
    ("http://localhost:4242/hook", "10.0.0.7", (), ("10.0.0.7", 4242, "/hook")),
    ("http://[::1]:9000/", "10.0.0.7", (), ("10.0.0.7", 9000, "/")),
    ("https://hooks.partner.test/in", "10.0.0.7", ("hooks.partner.test",),
     ("hooks.partner.test", 443, "/in")),
    ("https://a.partner.test/in", "10.0.0.7", ("*.partner.test",), ("a.partner.test", 443, "/in")),
])
def test_webhook_targets_are_loopback_the_sandbox_itself_or_allow_listed(url, client, allow,
                                                                        expect):
    t = target(url, client, allow)
    assert (t.connect, t.port, t.path) == expect


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/x", "http://10.0.0.1/x", "http://169.254.169.254/latest",
    "http://192.168.1.1:8080/", "ftp://localhost/x", "http://partner.test.evil.com/",
])
def test_webhook_targets_anywhere_else_are_refused(url):
    with pytest.raises(Refused):
        target(url, "127.0.0.1", ("partner.test",))


@pytest.mark.parametrize(("url", "resolved"), [
    ("http://metadata.google.internal/computeMetadata/v1/", ["169.254.169.254"]),
    ("http://hooks.partner.test/stripe", ["169.254.169.254"]),
    ("http://hooks.partner.test/stripe", ["fd00:ec2::254"]),
])
def test_allow_listed_webhook_hosts_never_reach_cloud_metadata(monkeypatch, url, resolved):
    async def fake_resolve(name: str, port: int) -> list[str]:
        return resolved

    monkeypatch.setattr(webhooks, "system_resolve", fake_resolve)
    t = target(url, "127.0.0.1", ("*.partner.test", "metadata.google.internal"))
    with pytest.raises(Refused):
        asyncio.run(webhooks._pin(t))


def test_allow_listed_webhook_hosts_are_pinned_to_the_address_resolved(monkeypatch):
    async def fake_resolve(name: str, port: int) -> list[str]:
        return ["169.254.169.254", "10.1.2.3"]

    monkeypatch.setattr(webhooks, "system_resolve", fake_resolve)
    t = asyncio.run(webhooks._pin(target("https://hooks.partner.test/x", "127.0.0.1",
                                          ("hooks.partner.test",))))
    assert (t.connect, t.host) == ("10.1.2.3", "hooks.partner.test")


def _attempts(g: Any, count: int) -> list[dict[str, Any]]:
    """The audit log's webhook delivery events, once there are ``count``."""
    end = time.monotonic() + DEADLINE
    found: list[dict[str, Any]] = []
    while time.monotonic() < end:
        found = [e for e in map(json.loads, g.cfg.audit.read_text().splitlines())
                 if e["rule"] == RULE]
        if len(found) >= count:
            break
        time.sleep(0.05)
    return found


def _event_settled(c: stripe.StripeClient, event_id: str, pending: int) -> int:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end and c.v1.events.retrieve(event_id).pending_webhooks != pending:
        time.sleep(0.05)
    return c.v1.events.retrieve(event_id).pending_webhooks


def test_a_failed_delivery_is_retried_with_backoff_and_each_attempt_is_audited(
        guard_proxy: Any) -> None:
    receiver = Receiver(fail_first=2)
    try:
        g = guard_proxy(seed=7, webhook_retries=(0.1, 0.2, 0.3))
        c = sdk(g)
        endpoint = c.v1.webhook_endpoints.create({"url": receiver.url,
                                                  "enabled_events": ["customer.created"]})
        c.v1.customers.create({"email": "retry@example.com"})
        got = receiver.wait_for(3)
        event = c.v1.events.list({"type": "customer.created"}).data[0]
        # the same event, signed for the endpoint, every time: receivers dedupe by its id
        ids = {stripe.Webhook.construct_event(body.decode(), h["Stripe-Signature"],
                                              endpoint.secret).id for body, h in got}
        assert len(got) == 3 and ids == {event.id}
        assert _event_settled(c, event.id, 0) == 0
        records = _deliveries(g, 1)
        assert [(r["status"], r["attempts"], r["next_retry_at"]) for r in records] == [
            (200, 3, None)]
        audited = _attempts(g, 3)
        assert [(e["status"], e["delivery"]["attempt"]) for e in audited] == [
            (500, 1), (500, 2), (200, 3)]
        assert all(e["sandbox"] == "127.0.0.1" and e["delivery"]["event"] == event.id
                   and e["upstream"] is True and e["kind"] == "system" for e in audited)
        assert audited[0]["delivery"]["next_retry_at"] is not None
        assert audited[2]["delivery"]["next_retry_at"] is None
        assert endpoint.secret not in g.cfg.audit.read_text()
        assert g.worlds.deliveries.pending() == []
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_a_delivery_that_keeps_failing_stops_after_the_last_retry(guard_proxy: Any) -> None:
    receiver = Receiver(fail_first=1000)
    try:
        g = guard_proxy(seed=7, webhook_retries=(0.1,))
        c = sdk(g)
        c.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
        c.v1.customers.create()
        audited = _attempts(g, 2)
        assert [(e["status"], e["delivery"]["attempt"]) for e in audited] == [(500, 1), (500, 2)]
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end and g.worlds.deliveries.pending():
            time.sleep(0.05)
        assert g.worlds.deliveries.pending() == []  # given up, nothing left queued
        assert len(receiver.received) == 2
        event = c.v1.events.list().data[0]
        assert event.pending_webhooks == 1  # never delivered
        assert _deliveries(g, 1)[0]["attempts"] == 2
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_a_refused_url_is_audited_once_and_never_retried(guard_proxy: Any, upstream: Any) -> None:
    g = guard_proxy(seed=7, webhook_retries=(0.1, 0.1))
    c = sdk(g)
    c.v1.webhook_endpoints.create({"url": "https://hooks.example.com/stripe?token=abc",
                                   "enabled_events": ["*"]})
    c.v1.customers.create()
    audited = _attempts(g, 1)
    assert len(audited) == 1 and audited[0]["upstream"] is False
    assert audited[0]["status"] is None
    assert "not delivered" in audited[0]["delivery"]["error"]
    assert g.worlds.deliveries.pending() == [] and g.upstream_attempts == []


def test_an_endpoint_disabled_before_its_retry_gets_nothing_more(guard_proxy: Any) -> None:
    receiver = Receiver(fail_first=1000)
    try:
        g = guard_proxy(seed=7, webhook_retries=(0.5,))
        c = sdk(g)
        we = c.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
        c.v1.customers.create()
        receiver.wait_for(1)
        c.v1.webhook_endpoints.update(we.id, {"disabled": True})
        audited = _attempts(g, 2)
        assert [e["status"] for e in audited] == [500, None]
        assert "is disabled" in audited[1]["reason"]
        assert len(receiver.received) == 1
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
