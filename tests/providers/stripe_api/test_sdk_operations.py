"""tools/stripe_sdk_operations.py: the SDK's operations the vendored spec lacks, and that
guard answers each of them with Stripe's 404 rather than something made up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[3]


def listed() -> tuple[str, list[str]]:
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "stripe_sdk_operations.py")],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    head, *rest = out.splitlines()
    return head, [line.strip() for line in rest if line.startswith("  ")]


def test_the_list_names_newer_operations_and_none_the_spec_has(guard_proxy):
    head, ops = listed()
    assert "not in the vendored spec (2024-04-10)" in head and ops
    assert "POST /v1/customers" not in ops and "GET /v1/customers/{customer}" not in ops
    g = guard_proxy()
    for op in [o for o in ops if "{" not in o][:5]:
        method, path = op.split(" ", 1)
        r = requests.request(method, "https://api.stripe.com" + path, proxies=g.proxies,
                             verify=g.ca, headers={"Authorization": "Bearer sk_test_x"},
                             timeout=10)
        assert r.status_code == 404, (op, r.text)
        assert r.json()["error"]["message"].startswith("Unrecognized request URL"), op
    assert g.upstream_attempts == []
