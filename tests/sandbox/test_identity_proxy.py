"""Sandbox identity is proven, never claimed (issue 11.5), through a real guard and the
clients agents use: requests, httpx, curl, urllib, the stripe SDK and boto3."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
import requests
import stripe
from botocore.config import Config

from guard.options import Options
from guard.proxy.embedded import RunningGuard
from guard.sandbox import tokens
from tests.sandboxes import KEY_FILE, proxy_url, token


def _guard(confdir: Path, tmp: Path, mode: str) -> RunningGuard:
    cfg = Options(listen_port=0, confdir=confdir, quiet=True, state=None, audit=tmp / "audit.jsonl",
                    sandbox_from=mode, sandbox_key=KEY_FILE, seed=5)
    return RunningGuard(cfg).__enter__()


@pytest.fixture(scope="module")
def by_user(confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGuard]:
    g = _guard(confdir, tmp_path_factory.mktemp("by-user"), "proxy-user")
    yield g
    g.stop()


@pytest.fixture(scope="module")
def by_header(confdir: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[RunningGuard]:
    g = _guard(confdir, tmp_path_factory.mktemp("by-header"), "header")
    yield g
    g.stop()


def events(g: RunningGuard) -> list[dict]:
    assert g.cfg.audit is not None
    return [json.loads(line) for line in g.cfg.audit.read_text().splitlines()]


def whoami_requests(g: RunningGuard, proxy: str, headers: dict[str, str] | None = None
                    ) -> requests.Response:
    s = requests.Session()
    s.trust_env = False
    return s.get("https://guard.internal/", proxies={"https": proxy, "http": proxy},
                 verify=g.ca, headers=headers or {}, timeout=10)


# the documented proxy URL form, client by client

def test_requests_proves_its_sandbox_with_the_documented_proxy_url(by_user):
    r = whoami_requests(by_user, proxy_url(by_user.url, "agent-7"))
    assert r.status_code == 200 and r.json()["sandbox"] == "agent-7"


def test_httpx_proves_its_sandbox_with_the_documented_proxy_url(by_user):
    ctx = ssl.create_default_context(cafile=by_user.ca)
    with httpx.Client(proxy=proxy_url(by_user.url, "agent-7"), verify=ctx,
                      trust_env=False) as c:
        assert c.get("https://guard.internal/").json()["sandbox"] == "agent-7"


def test_curl_proves_its_sandbox_with_the_documented_proxy_url(by_user):
    out = subprocess.run(["curl", "-sS", "--proxy", proxy_url(by_user.url, "agent-7"),
                          "--cacert", by_user.ca, "https://guard.internal/"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout)["sandbox"] == "agent-7"


def test_urllib_proves_its_sandbox_with_the_documented_proxy_url(by_user):
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy_url(by_user.url, "agent-7")}),
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=by_user.ca)))
    with opener.open("https://guard.internal/", timeout=10) as r:
        assert json.loads(r.read())["sandbox"] == "agent-7"


def test_the_stripe_sdk_proves_its_sandbox_with_the_documented_proxy_url(by_user):
    saved = stripe.ca_bundle_path
    stripe.ca_bundle_path = by_user.ca
    try:
        client = stripe.StripeClient("sk_test_identity", max_network_retries=0,
                                     http_client=stripe.RequestsClient(
                                         proxy=proxy_url(by_user.url, "agent-stripe")))
        customer = client.v1.customers.create(params={"email": "jenny@example.com"})
    finally:
        stripe.ca_bundle_path = saved
    [e] = [e for e in events(by_user) if e["url"].startswith("https://api.stripe.com")
           and e["sandbox"] == "agent-stripe"]
    assert e["action"] == "simulate" and customer.id.startswith("cus_")
    world = by_user.worlds.world("agent-stripe")
    assert any(world.get(c, customer.id) for c in world.collections())


def test_boto3_proves_its_sandbox_with_the_documented_proxy_url(by_user):
    ses = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                       aws_secret_access_key="guard-test-secret", verify=by_user.ca,
                       config=Config(proxies={"https": proxy_url(by_user.url, "agent-aws")},
                                     retries={"max_attempts": 1, "mode": "standard"}))
    ses.send_email(FromEmailAddress="shop@example.com",
                   Destination={"ToAddresses": ["jenny@example.com"]},
                   Content={"Simple": {"Subject": {"Data": "Hi"},
                                       "Body": {"Text": {"Data": "Hello"}}}})
    outbox = by_user.worlds.world("agent-aws").list("outbox")
    assert [m["subject"] for m in outbox] == ["Hi"]


# what is refused, and how it is audited

def _refused(g: RunningGuard, r: requests.Response, rule: str) -> dict:
    assert r.status_code in (403, 407), r.text
    assert r.json()["error"]["rule"] == rule
    last = events(g)[-1]
    assert last["rule"] == rule and last["action"] == "block" and last["sandbox"] == ""
    return last


def test_a_proxy_user_without_a_colon_is_refused_not_put_in_the_address_sandbox(by_user):
    # requests sends no credentials at all for a user without ':' (the old README form)
    r = whoami_requests(by_user, by_user.url.replace("http://", "http://agent-7@"))
    _refused(by_user, r, "guard.sandbox-missing")
    assert r.status_code == 407 and "Proxy-Authenticate" in r.headers


@pytest.mark.parametrize("password", [
    pytest.param("x", id="not-a-token"),
    pytest.param(token("agent-7")[:-1], id="truncated"),
    pytest.param(token("agent-7")[:-2] + "AA", id="altered"),
    pytest.param(tokens.derive("agent-7", b"another-guard-key-0000"), id="forged-other-key"),
    pytest.param("gsk_agent-7.", id="empty-mac"),
    pytest.param("gsk_" + "A" * 300, id="huge"),
    pytest.param("gsk_agent-7." + token("agent-7").rsplit(".", 1)[1] + "\x00", id="nul"),
])
def test_a_claimed_sandbox_without_its_valid_token_is_refused(by_user, password):
    proxy = by_user.url.replace("http://", f"http://agent-7:{password}@")
    last = _refused(by_user, whoami_requests(by_user, proxy), "guard.sandbox-unproven")
    assert password not in json.dumps(last) or len(password) < 3


def test_another_sandboxs_id_with_ones_own_token_is_refused(by_user):
    proxy = by_user.url.replace("http://", f"http://victim:{token('attacker')}@")
    _refused(by_user, whoami_requests(by_user, proxy), "guard.sandbox-unproven")


@pytest.mark.parametrize("header", ["X-Guard-Sandbox", "Authorization", "X-Guard-Token",
                                    "Proxy-Authorization"])
def test_a_token_in_another_header_proves_nothing_in_proxy_user_mode(by_user, header):
    """Inside a CONNECT tunnel only the CONNECT's credentials count, never a header of a
    tunnelled request (not even a Proxy-Authorization header sent inside the tunnel)."""
    value = token("agent-7")
    if header == "Proxy-Authorization":
        value = "Basic " + base64.b64encode(f"agent-7:{value}".encode()).decode()
    r = whoami_requests(by_user, by_user.url, {header: value})
    _refused(by_user, r, "guard.sandbox-missing")


def test_header_mode_refuses_a_bare_name_and_a_missing_header(by_header):
    _refused(by_header, whoami_requests(by_header, by_header.url,
                                        {"X-Guard-Sandbox": "agent-7"}),
             "guard.sandbox-unproven")
    r = _refused(by_header, whoami_requests(by_header, by_header.url), "guard.sandbox-missing")
    assert r["client"] == "127.0.0.1"  # the address is recorded, never used as the sandbox


def test_header_mode_accepts_the_token_and_proxy_credentials_prove_nothing_there(by_header):
    ok = whoami_requests(by_header, by_header.url, {"X-Guard-Sandbox": token("agent-h")})
    assert ok.json()["sandbox"] == "agent-h"
    _refused(by_header, whoami_requests(by_header, proxy_url(by_header.url, "agent-h")),
             "guard.sandbox-missing")


def test_header_mode_with_httpx_and_curl(by_header):
    ctx = ssl.create_default_context(cafile=by_header.ca)
    with httpx.Client(proxy=by_header.url, verify=ctx, trust_env=False,
                      headers={"X-Guard-Sandbox": token("agent-hx")}) as c:
        assert c.get("https://guard.internal/").json()["sandbox"] == "agent-hx"
    out = subprocess.run(["curl", "-sS", "--proxy", by_header.url, "--cacert", by_header.ca,
                          "-H", f"X-Guard-Sandbox: {token('agent-hc')}",
                          "https://guard.internal/"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout)["sandbox"] == "agent-hc"


def test_sandbox_tokens_never_reach_the_audit_log_or_the_upstream(by_header, upstream):
    secret = token("agent-leak")
    s = requests.Session()
    s.trust_env = False
    # the token also sent where it proves nothing: a query parameter and another header
    s.get(f"http://127.0.0.1:{upstream.port}/?t={secret}", proxies=by_header.proxies,
          headers={"X-Guard-Sandbox": secret, "X-Other": secret}, timeout=10)
    assert upstream.connections == 0
    assert secret.split(".")[-1] not in by_header.cfg.audit.read_text()


def test_an_issued_token_of_a_deleted_sandbox_is_refused(by_header):
    registry = by_header.registry
    _, issued = registry.create("short-lived")
    ok = whoami_requests(by_header, by_header.url, {"X-Guard-Sandbox": issued})
    assert ok.json()["sandbox"] == "short-lived"
    registry.delete("short-lived")
    _refused(by_header, whoami_requests(by_header, by_header.url, {"X-Guard-Sandbox": issued}),
             "guard.sandbox-unproven")
    # and the derived token of a deleted id too
    _refused(by_header, whoami_requests(by_header, by_header.url,
                                        {"X-Guard-Sandbox": token("short-lived")}),
             "guard.sandbox-unproven")


def test_an_address_binding_names_the_sandbox_in_every_mode(by_header):
    registry = by_header.registry
    registry.create("bound", client_address="127.0.0.1")
    try:
        assert whoami_requests(by_header, by_header.url).json()["sandbox"] == "bound"
    finally:
        registry.delete("bound")


def test_guard_refuses_to_start_a_proven_mode_without_any_proof(confdir, tmp_path):
    from guard.errors import SandboxError
    from guard.proxy.master import build

    with pytest.raises(SandboxError, match="needs proof of identity"):
        build(Options(listen_port=0, confdir=confdir, sandbox_from="header"))


def test_guard_sandbox_token_prints_the_derived_token(capsys):
    from guard.cli import main

    assert main(["sandbox", "token", "agent-7", "--key", str(KEY_FILE)]) == 0
    assert capsys.readouterr().out.strip() == token("agent-7")
    assert main(["sandbox", "token", "../x", "--key", str(KEY_FILE)]) == 2
