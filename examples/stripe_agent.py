"""An agent-style script: the everyday Stripe flows an AI agent writes, start to end,
with the official SDK and nothing guard-specific but the proxy settings.

    HTTPS_PROXY=http://127.0.0.1:8080 GUARD_CA=~/.guard/mitmproxy-ca-cert.pem \\
    STRIPE_API_KEY=sk_test_123 python examples/stripe_agent.py

It exits 0 and prints "all flows done" when every flow behaved as in Stripe's test mode.
"""

from __future__ import annotations

import http.server
import os
import sys
import threading

import stripe


def main() -> int:
    stripe.ca_bundle_path = os.path.expanduser(os.environ["GUARD_CA"])
    client = stripe.StripeClient(
        os.environ.get("STRIPE_API_KEY", "sk_test_agent"),
        http_client=stripe.RequestsClient(proxy=os.environ["HTTPS_PROXY"]))

    # A local webhook receiver, as `stripe listen` would forward to.
    received: list[stripe.Event] = []
    secret: list[str] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append(stripe.Webhook.construct_event(
                body, self.headers["Stripe-Signature"], secret[0]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = client.v1.webhook_endpoints.create({
        "url": f"http://localhost:{server.server_address[1]}/webhooks/stripe",
        "enabled_events": ["payment_intent.succeeded", "payment_intent.payment_failed",
                           "invoice.paid", "charge.refunded"]})
    secret.append(endpoint.secret)

    # 1. Customer with a saved card.
    customer = client.v1.customers.create({"email": "buyer@example.com", "name": "Buyer",
                                           "metadata": {"user_id": "u_123"}})
    card = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    client.v1.customers.update(customer.id, {
        "invoice_settings": {"default_payment_method": card.id}})
    print("customer", customer.id, "card", card.card.brand, card.card.last4)

    # 2. One-off payment, then a partial refund.
    intent = client.v1.payment_intents.create({
        "amount": 4999, "currency": "usd", "customer": customer.id, "payment_method": card.id,
        "confirm": True, "metadata": {"order_id": "ord_1"}})
    assert intent.status == "succeeded", intent.status
    refund = client.v1.refunds.create({"payment_intent": intent.id, "amount": 999,
                                       "reason": "requested_by_customer"})
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (999, False)
    print("paid", intent.id, "refunded", refund.amount)

    # 3. A declined card, handled the way Stripe's docs say.
    try:
        client.v1.payment_intents.create({
            "amount": 2000, "currency": "usd", "confirm": True,
            "payment_method": "pm_card_chargeDeclinedInsufficientFunds"})
        raise AssertionError("a declining card was accepted")
    except stripe.CardError as e:
        print("declined:", e.code, e.error.decline_code)
        assert e.error.decline_code == "insufficient_funds"

    # 4. Authorize now, capture later.
    hold = client.v1.payment_intents.create({
        "amount": 12000, "currency": "usd", "capture_method": "manual",
        "payment_method": "pm_card_mastercard", "confirm": True})
    hold = client.v1.payment_intents.capture(hold.id, {"amount_to_capture": 10000})
    assert hold.status == "succeeded" and hold.amount_received == 10000

    # 5. A subscription from a product and a monthly price.
    product = client.v1.products.create({"name": "Team plan"})
    price = client.v1.prices.create({"product": product.id, "unit_amount": 1500,
                                     "currency": "usd", "recurring": {"interval": "month"}})
    sub = client.v1.subscriptions.create({"customer": customer.id,
                                          "items": [{"price": price.id, "quantity": 3}],
                                          "expand": ["latest_invoice"]})
    assert sub.status == "active" and sub.latest_invoice.amount_paid == 4500
    print("subscription", sub.id, sub.status)

    # 6. A hosted checkout page for a guest.
    session = client.v1.checkout.sessions.create({
        "mode": "payment", "success_url": "https://example.com/thanks",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 2500,
                                       "product_data": {"name": "Gift card"}},
                        "quantity": 2}]})
    assert client.v1.checkout.sessions.retrieve(session.id).url == session.url
    print("checkout", session.url[:60])

    # 7. Idempotent retry of a create.
    a = client.v1.customers.create({"email": "retry@example.com"},
                                   {"idempotency_key": "signup-42"})
    b = client.v1.customers.create({"email": "retry@example.com"},
                                   {"idempotency_key": "signup-42"})
    assert a.id == b.id

    # 8. Reports: list what exists.
    payments = list(client.v1.payment_intents.list({"customer": customer.id})
                    .auto_paging_iter())
    events = client.v1.events.list({"limit": 100})
    print("payments for customer:", len(payments), "events:", len(events.data))
    assert len(payments) == 2  # the one-off payment and the subscription's first invoice

    # 9. Webhooks arrive for what happened.
    import time

    deadline = time.monotonic() + 20
    wanted = {"payment_intent.succeeded", "payment_intent.payment_failed", "invoice.paid",
              "charge.refunded"}
    while not wanted <= {e.type for e in received} and time.monotonic() < deadline:
        time.sleep(0.05)
    missing = wanted - {e.type for e in received}
    assert not missing, f"webhooks never arrived: {missing}"
    print("webhooks verified:", len(received))
    server.shutdown()
    print("all flows done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
