"""Reverse mode for SDKs that take a base URL, as stripe-mock serves: `guard run --mode
reverse:https://api.stripe.com@PORT` answers the simulated Stripe API over plain HTTP, and
the official stripe SDK pointed at it works with no proxy and no CA."""

from __future__ import annotations

import json
import subprocess
import sys

import stripe

from tests.cli.test_run import start, stop
from tests.conftest import free_port


def test_the_stripe_sdk_works_against_reverse_mode_over_plain_http(tmp_path):
    port = free_port()
    audit = tmp_path / "audit.jsonl"
    proc, banner, _ = start(tmp_path / "conf", "--mode",
                            f"reverse:https://api.stripe.com@{port}", "--audit", str(audit),
                            "--state", "off", last="stripe.api_base")
    try:
        assert (f"guard: reverse mode: http://127.0.0.1:{port} answers as "
                "https://api.stripe.com, over plain HTTP") in banner
        assert f"stripe.api_base = 'http://127.0.0.1:{port}'" in banner
        assert "HTTPS_PROXY" not in banner  # not a proxy: nothing to export
        client = stripe.StripeClient("sk_test_reverse", base_addresses={
            "api": f"http://127.0.0.1:{port}"}, http_client=stripe.RequestsClient())
        customer = client.v1.customers.create(params={"email": "jenny@example.com"})
        assert customer.id.startswith("cus_") and customer.livemode is False
        assert client.v1.customers.retrieve(customer.id).email == "jenny@example.com"
        assert [c.id for c in client.v1.customers.list().data] == [customer.id]
        refused = subprocess.run([sys.executable, "-c", (
            "import stripe\n"
            f"c = stripe.StripeClient('sk_live_x', base_addresses={{'api': "
            f"'http://127.0.0.1:{port}'}})\n"
            "try:\n    c.v1.customers.list()\nexcept stripe.StripeError as e:\n"
            "    print(e.http_status)\n")], capture_output=True, text=True, timeout=60)
        assert refused.stdout.strip() == "403"  # a live key is still blocked
    finally:
        stop(proc)
    rules = [json.loads(x)["rule"] for x in audit.read_text().splitlines()
             if json.loads(x).get("kind") == "flow"]
    assert rules == ["stripe.customers.create", "stripe.customers.retrieve",
                     "stripe.customers.list", "stripe.live-key"]
