"""The admin API (issue 12) through its real listener, with the real clients: httpx (the
guard.client), requests and the stripe SDK through the proxy."""

from __future__ import annotations

import hmac
import json
import time

import httpx
import pytest
import requests
import stripe

from guard.client import Admin, AdminError
from guard.proxy.embedded import RunningGuard
from tests.admin.admin_helpers import new_id


def through(g: RunningGuard, sandbox) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    proxy = sandbox.proxy_url(g.url)
    s.proxies = {"http": proxy, "https": proxy}
    s.verify = g.ca
    return s


def stripe_client(g: RunningGuard, sandbox) -> stripe.StripeClient:
    stripe.ca_bundle_path = g.ca
    return stripe.StripeClient("sk_test_admin", max_network_retries=0,
                               http_client=stripe.RequestsClient(proxy=sandbox.proxy_url(g.url)))


@pytest.fixture(autouse=True)
def _keep_stripe_bundle():
    saved = stripe.ca_bundle_path
    yield
    stripe.ca_bundle_path = saved


def raw(g: RunningGuard, method: str, path: str, **kw) -> httpx.Response:
    headers = kw.pop("headers", {"Authorization": f"Bearer {g.admin_token}"})
    return httpx.request(method, g.admin_url + path, headers=headers, timeout=10, **kw)


# authentication and the shape of errors

@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Z3VhcmQ6eA=="},
    {"Authorization": "Bearer"}, {"X-Guard-Admin": "x"},
], ids=["none", "wrong", "basic", "empty", "other-header"])
def test_the_admin_api_refuses_requests_without_its_token(admin_guard, headers):
    for path in ("/v1/sandboxes", "/openapi.json", "/v1/snapshots", "/nowhere"):
        r = raw(admin_guard, "GET", path, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "unauthorized"


def test_a_truncated_or_extended_token_is_refused(admin_guard):
    t = admin_guard.admin_token
    for bad in (t[:-1], t + "x", t.upper(), " " + t[1:]):
        r = raw(admin_guard, "GET", "/v1/sandboxes", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401


def test_token_comparison_is_constant_time(monkeypatch, admin_guard):
    """The bearer token is compared with hmac.compare_digest, never ==."""
    from guard.admin import http as admin_http

    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(admin_http.hmac, "compare_digest",
                        lambda a, b: seen.append((a, b)) or real(a, b))
    assert raw(admin_guard, "GET", "/v1/sandboxes").status_code == 200
    assert seen and seen[-1][1] == admin_guard.admin_token.encode()


def test_errors_are_json_with_a_type_and_a_message(admin_guard):
    cases = [("GET", "/v1/sandboxes/nope", 404, "not_found"),
             ("GET", "/v2/whatever", 404, "not_found"),
             ("PATCH", "/v1/sandboxes", 405, "method_not_allowed"),
             ("POST", "/v1/sandboxes/nope/fork", 404, "not_found")]
    for method, path, status, kind in cases:
        r = raw(admin_guard, method, path)
        assert r.status_code == status, (path, r.text)
        err = r.json()["error"]
        assert err["type"] == kind and err["message"]


def test_openapi_json_describes_every_route(admin_guard):
    from guard.admin.app import ROUTES

    doc = raw(admin_guard, "GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for op in ROUTES:
        assert op.method.lower() in doc["paths"][op.path], op.path
    assert doc["components"]["schemas"]["CreateSandbox"]["properties"]["from"]
    assert "Policy" in doc["components"]["schemas"]


# hostile bodies

def test_a_huge_body_is_refused_before_it_is_read(admin_guard):
    r = raw(admin_guard, "POST", "/v1/sandboxes", content=b"{" + b" " * (200 * 1024) + b"}",
            headers={"Authorization": f"Bearer {admin_guard.admin_token}",
                     "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"


def test_a_chunked_huge_body_is_cut_off(admin_guard):
    def chunks():
        for _ in range(200):
            yield b" " * 1024
    r = raw(admin_guard, "POST", "/v1/sandboxes", content=chunks(),
            headers={"Authorization": f"Bearer {admin_guard.admin_token}",
                     "Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,                     # the C decoder's recursion limit
    b'{"labels": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}",  # deep but parseable
    b"\xff\xfe not json", b'{"id": "x"', b"null", b'"a string"',
], ids=["deep-100k", "deep-70", "bytes", "truncated", "null", "string"])
def test_hostile_json_gets_a_clear_400(admin_guard, body):
    r = raw(admin_guard, "POST", "/v1/sandboxes", content=body,
            headers={"Authorization": f"Bearer {admin_guard.admin_token}",
                     "Content-Type": "application/json"})
    assert r.status_code in (400, 413), r.text
    assert r.json()["error"]["type"] in ("invalid_request", "payload_too_large")


def test_a_body_that_is_not_json_is_refused(admin_guard):
    r = raw(admin_guard, "POST", "/v1/sandboxes", content=b"id=x",
            headers={"Authorization": f"Bearer {admin_guard.admin_token}",
                     "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", ".hidden", "a..b", "x" * 200,
                                 "a\nb", "a b", "é", "seed:../x"])
def test_invalid_ids_are_refused(admin, bad):
    with pytest.raises(AdminError) as e:
        admin.create(bad)
    assert e.value.status == 400


@pytest.mark.parametrize("path", [
    "/v1/snapshots/..%2F..%2Fetc%2Fpasswd", "/v1/snapshots/%2e%2e", "/v1/snapshots/..",
    "/v1/snapshots/seed:..%2Fx", "/v1/snapshots/a%00b", "/v1/snapshots/%2Fetc%2Fpasswd",
])
def test_snapshot_ids_cannot_traverse_paths(admin_guard, path):
    for method in ("GET", "PUT", "DELETE"):
        r = raw(admin_guard, method, path, json={"v": 1, "collections": {}})
        assert r.status_code in (400, 404), (method, path, r.status_code)
        assert "root:" not in r.text


# sandboxes: create, identity, fork, delete

def test_create_returns_a_token_that_proves_the_sandbox(admin_guard, admin):
    sb = admin.create(new_id(), labels={"suite": "admin"})
    assert sb.token and sb.token.startswith("gsk_")
    r = through(admin_guard, sb).get("https://guard.internal/")
    assert r.json()["sandbox"] == sb.id
    assert admin.get(sb.id).token is None  # the token is shown once


def test_a_sandbox_created_from_the_stripe_catalogue_has_its_objects(admin_guard, admin):
    sb = admin.create(new_id(), from_="stripe-catalogue")
    shown = admin.get(sb.id)
    assert shown.objects > 0 and shown.source == "stripe-catalogue"
    prices = stripe_client(admin_guard, sb).v1.prices.list(params={"limit": 100})
    assert len(prices.data) > 0


def test_two_forks_diverge_through_the_stripe_sdk(admin_guard, admin):
    base = admin.create(new_id())
    sdk = stripe_client(admin_guard, base)
    customer = sdk.v1.customers.create(params={"email": "jenny@example.com"})
    charge = sdk.v1.charges.create(params={"amount": 1200, "currency": "usd",
                                           "source": "tok_visa", "customer": customer.id})
    a, b = admin.fork(base.id, new_id("a")), admin.fork(base.id, new_id("b"))
    sdk_a, sdk_b = stripe_client(admin_guard, a), stripe_client(admin_guard, b)
    # both start as exact copies
    assert sdk_a.v1.charges.retrieve(charge.id).amount == 1200
    assert sdk_b.v1.customers.retrieve(customer.id).email == "jenny@example.com"
    refund = sdk_a.v1.refunds.create(params={"charge": charge.id})
    assert sdk_a.v1.charges.retrieve(charge.id).refunded is True
    assert sdk_b.v1.charges.retrieve(charge.id).refunded is False
    with pytest.raises(stripe.InvalidRequestError):
        sdk_b.v1.refunds.retrieve(refund.id)
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.refunds.retrieve(refund.id)
    # ids made after the fork never collide
    made = [s.v1.customers.create(params={"email": f"{i}@x.test"}).id
            for i, s in enumerate((sdk, sdk_a, sdk_b, sdk_a, sdk_b))]
    assert len(set(made)) == len(made)
    assert admin.get(a.id).parent == base.id


def test_a_deleted_sandboxs_world_is_gone_and_its_token_refused(admin_guard, admin):
    sb = admin.create(new_id())
    s = through(admin_guard, sb)
    stripe_client(admin_guard, sb).v1.customers.create(params={"email": "a@b.c"})
    admin.delete(sb.id)
    with pytest.raises(AdminError) as e:
        admin.get(sb.id)
    assert e.value.status == 404
    r = s.get("https://guard.internal/world")
    assert r.status_code == 407 and r.json()["error"]["rule"] == "guard.sandbox-unproven"
    assert not admin_guard.worlds.exists(sb.id)
    # an id can be made again, with a new token; the old one stays refused
    again = admin.create(sb.id)
    assert through(admin_guard, again).get("https://guard.internal/").json()["sandbox"] == sb.id
    assert s.get("https://guard.internal/").status_code == 407


def test_another_sandboxs_id_with_ones_own_token_is_refused(admin_guard, admin):
    mine, victim = admin.create(new_id()), admin.create(new_id())
    s = requests.Session()
    s.trust_env = False
    proxy = admin_guard.url.replace("http://", f"http://{victim.id}:{mine.token}@")
    r = s.get("https://guard.internal/world", proxies={"https": proxy}, verify=admin_guard.ca)
    assert r.status_code == 407 and r.json()["error"]["rule"] == "guard.sandbox-unproven"


def test_conflicts_are_409(admin):
    sb = admin.create(new_id())
    with pytest.raises(AdminError) as e:
        admin.create(sb.id)
    assert e.value.status == 409
    with pytest.raises(AdminError) as e:
        admin.fork(sb.id, sb.id)
    assert e.value.status == 409


def test_list_filters_by_label_and_pages(admin):
    run = new_id("run")
    made = [admin.create(new_id(), labels={"run": run}).id for _ in range(5)]
    admin.create(new_id(), labels={"run": "other"})
    assert [s.id for s in admin.list(labels={"run": run}, limit=2)] == made


def test_show_counts_objects_per_collection_and_bytes(admin_guard, admin):
    sb = admin.create(new_id())
    sdk = stripe_client(admin_guard, sb)
    for i in range(3):
        sdk.v1.customers.create(params={"email": f"{i}@example.com"})
    world = admin.get(sb.id).world
    [name] = [c for c in world["counts"] if "customers" in c]
    assert world["counts"][name] == 3 and world["bytes"][name] > 0
    assert world["last_activity"] > 0


# snapshots, restore, reset, diff

def test_snapshot_restore_reset_and_diff(admin_guard, admin):
    sb = admin.create(new_id())
    sdk = stripe_client(admin_guard, sb)
    kept = sdk.v1.customers.create(params={"email": "kept@example.com"})
    changed = sdk.v1.customers.create(params={"email": "old@example.com"})
    gone = sdk.v1.customers.create(params={"email": "gone@example.com"})
    snap = admin.snapshot(sb.id, new_id("snap"))
    version = admin.get(sb.id).world["version"]
    sdk.v1.customers.update(changed.id, params={"email": "new@example.com"})
    sdk.v1.customers.delete(gone.id)  # Stripe keeps a deleted customer as {"deleted": true}
    made = sdk.v1.customers.create(params={"email": "made@example.com"})

    for since in (snap.id, version):
        d = admin.diff(sb.id, since)
        [name] = [c for c in d["collections"] if "customers" in c]
        c = d["collections"][name]
        assert [o["id"] for o in c["created"]] == [made.id]
        fields = {ch["id"]: ch["fields"] for ch in c["changed"]}
        assert fields[changed.id]["email"] == {"before": "old@example.com",
                                               "after": "new@example.com"}
        assert fields[gone.id]["deleted"] == {"before": None, "after": True}
        assert kept.id not in json.dumps(d)

    admin.restore(sb.id, snap.id)
    assert sdk.v1.customers.retrieve(gone.id).email == "gone@example.com"
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.customers.retrieve(made.id)
    admin.reset(sb.id)
    assert admin.get(sb.id).objects == 0


def test_a_deleted_object_shows_as_deleted_in_the_diff(admin_guard, admin):
    """slack_sdk: chat.delete removes the message from the world."""
    import ssl

    from slack_sdk import WebClient

    sb = admin.create(new_id())
    slack = WebClient(token="xoxb-admin-test", proxy=sb.proxy_url(admin_guard.url),
                      ssl=ssl.create_default_context(cafile=admin_guard.ca))
    posted = slack.chat_postMessage(channel="#general", text="to be deleted")
    snap = admin.snapshot(sb.id)
    slack.chat_delete(channel=posted["channel"], ts=posted["ts"])
    d = admin.diff(sb.id, snap.id)
    [deleted] = [o for c in d["collections"].values() for o in c["deleted"]]
    assert "to be deleted" in json.dumps(deleted)


def test_snapshots_download_and_upload_in_the_state_export_format(admin_guard, admin,
                                                                  tmp_path):
    from guard.world import snapshot as files

    sb = admin.create(new_id())
    stripe_client(admin_guard, sb).v1.customers.create(params={"email": "x@example.com"})
    snap = admin.snapshot(sb.id, new_id("s"))
    doc = admin.download(snap.id)
    files.write(doc, tmp_path / "w.json")
    assert files.read(tmp_path / "w.json")["collections"]  # what guard state import reads
    uploaded = admin.upload(new_id("up"), doc)
    assert uploaded.objects == snap.objects
    copy = admin.create(new_id(), from_=uploaded.id)
    assert admin.get(copy.id).objects == snap.objects
    with pytest.raises(AdminError) as e:
        admin.upload(uploaded.id, doc)  # immutable
    assert e.value.status == 409
    with pytest.raises(AdminError) as e:
        admin.upload(new_id("bad"), {"v": 99})
    assert e.value.status == 400
    assert snap.id in [s.id for s in admin.snapshots()]
    admin.delete_snapshot(uploaded.id)
    assert admin.get(copy.id).objects == snap.objects  # worlds keep their objects


def test_the_outbox_shows_in_the_diff(admin_guard, admin):
    import boto3
    from botocore.config import Config

    sb = admin.create(new_id())
    snap = admin.snapshot(sb.id)
    ses = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                       aws_secret_access_key="x", verify=admin_guard.ca,
                       config=Config(proxies={"https": sb.proxy_url(admin_guard.url)},
                                     retries={"max_attempts": 1, "mode": "standard"}))
    ses.send_email(FromEmailAddress="shop@example.com",
                   Destination={"ToAddresses": ["jenny@example.com"]},
                   Content={"Simple": {"Subject": {"Data": "Receipt"},
                                       "Body": {"Text": {"Data": "Thanks"}}}})
    d = admin.diff(sb.id, snap.id)
    assert [m["subject"] for m in d["outbox"]] == ["Receipt"]


def test_events_are_those_the_sandbox_sees(admin_guard, admin):
    sb = admin.create(new_id())
    sdk = stripe_client(admin_guard, sb)
    sdk.v1.customers.create(params={"email": "e@example.com"})
    sdk.v1.customers.list()
    found = admin.events(sb.id)
    assert [e["rule"] for e in found][-2:] == ["stripe.customers.create",
                                               "stripe.customers.list"]
    assert all(e["sandbox"] == sb.id for e in found)
    mine = through(admin_guard, sb).get("https://guard.internal/events").json()["events"]
    assert [e["rule"] for e in mine][-2:] == ["stripe.customers.create",
                                              "stripe.customers.list"]


def test_the_event_stream_delivers_new_events_and_ends_on_delete(admin_guard, admin):
    import threading

    sb = admin.create(new_id())
    got: list[dict] = []

    def follow() -> None:
        with Admin(admin_guard.admin_url, admin_guard.admin_token) as a:
            for e in a.stream(sb.id):
                got.append(e)
    t = threading.Thread(target=follow, daemon=True)
    t.start()
    stripe_client(admin_guard, sb).v1.customers.create(params={"email": "s@example.com"})
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    admin.delete(sb.id)
    t.join(30)
    assert not t.is_alive() and got[0]["rule"] == "stripe.customers.create"


def test_an_idle_sandbox_expires_after_its_ttl(admin_guard, admin):
    sb = admin.create(new_id(), ttl_seconds=0.5)
    keep = admin.create(new_id(), ttl_seconds=3600)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            admin.get(sb.id)
        except AdminError as e:
            assert e.status == 404
            break
        time.sleep(0.1)
    else:
        pytest.fail("the sandbox did not expire")
    r = through(admin_guard, sb).get("https://guard.internal/")
    assert r.status_code == 407
    assert admin.get(keep.id).id == keep.id


# policies

def test_the_same_request_is_decided_by_each_sandboxs_own_policy(admin_guard, admin):
    open_ = admin.create(new_id())
    strict = admin.create(new_id(), policy={"name": "no-stripe", "disable_packs": ["stripe"]})
    ok = stripe_client(admin_guard, open_).v1.customers.create(params={"email": "a@b.c"})
    assert ok.id.startswith("cus_")
    with pytest.raises(stripe.PermissionError):
        stripe_client(admin_guard, strict).v1.customers.create(params={"email": "a@b.c"})
    events = [json.loads(line) for line in admin_guard.cfg.audit.read_text().splitlines()]
    last = {e["sandbox"]: e for e in events if e.get("host") == "api.stripe.com"}
    assert last[strict.id]["policy"] == "no-stripe"
    assert last[strict.id]["rule"] == "guard.default-deny"
    assert last[open_.id]["policy"] == "default"
    assert admin.get(strict.id).policy_label == "no-stripe"


def test_a_policys_faults_fail_that_sandboxs_simulated_answers_and_no_other(admin_guard,
                                                                             admin):
    flaky = admin.create(new_id(), policy={
        "name": "flaky", "faults": {"errors": [{"share": 1.0, "kind": "rate_limit"}]}})
    calm = admin.create(new_id())
    with pytest.raises(stripe.RateLimitError):
        stripe_client(admin_guard, flaky).v1.customers.create(params={"email": "a@b.c"})
    assert stripe_client(admin_guard, calm).v1.customers.create(
        params={"email": "a@b.c"}).id.startswith("cus_")
    assert admin.get(flaky.id).objects == 0  # an injected error changes nothing
    events = [json.loads(line) for line in admin_guard.cfg.audit.read_text().splitlines()]
    last = {e["sandbox"]: e for e in events if e.get("host") == "api.stripe.com"}
    assert last[flaky.id]["fault"]["kind"] == "rate_limit"
    assert last[flaky.id]["policy"] == "flaky" and last[flaky.id]["status"] == 429
    assert "fault" not in last[calm.id]
    assert admin.get(flaky.id).policy["faults"]["errors"][0]["kind"] == "rate_limit"
    with pytest.raises(AdminError) as e:  # the same checks as a pack's faults
        admin.create(new_id(), policy={"faults": {"errors": [{"share": 0.7, "kind": "reset"},
                                                             {"share": 0.7, "kind": "reset"}]}})
    assert e.value.status == 400 and "faults" in e.value.message


def test_a_policys_limits_bound_that_sandboxs_world_and_no_other(admin_guard, admin):
    small = admin.create(new_id(), policy={"name": "small", "limits": {"max_world_objects": 6}})
    other = admin.create(new_id())
    c = stripe_client(admin_guard, small)
    for i in range(2):  # three objects each (the customer, its event, the idempotency key)
        c.v1.customers.create(params={"email": f"{i}@b.c"})
    with pytest.raises(stripe.InvalidRequestError) as e:
        c.v1.customers.create(params={"email": "3@b.c"})
    assert e.value.code == "resource_limit"
    assert "the sandbox policy's limits.max_world_objects 6" in e.value.user_message
    assert admin.get(small.id).objects == 6  # nothing of the refused request was kept
    for i in range(3):  # guard's own limit (50,000) still applies to the other sandbox
        stripe_client(admin_guard, other).v1.customers.create(params={"email": f"{i}@b.c"})
    assert admin.get(other.id).objects == 9
    events = [json.loads(line) for line in admin_guard.cfg.audit.read_text().splitlines()]
    [refused] = [e for e in events if e.get("rule") == "guard.limit.world"]
    assert refused["sandbox"] == small.id and refused["policy"] == "small"
    assert admin.get(small.id).policy["limits"] == {"max_world_objects": 6}
    for bad in ({"max_world_objects": 0}, {"max_world_bytes": -1}, {"max_objects": 5}):
        with pytest.raises(AdminError) as info:
            admin.create(new_id(), policy={"limits": bad})
        assert info.value.status == 400 and "limits" in info.value.message


def test_a_policy_naming_an_unknown_pack_is_refused(admin):
    with pytest.raises(AdminError) as e:
        admin.create(new_id(), policy={"packs": ["no-such-pack"]})
    assert e.value.status == 400 and "no-such-pack" in e.value.message
    with pytest.raises(AdminError) as e:
        admin.create(new_id(), policy={"bogus": 1})
    assert e.value.status == 400


def test_an_address_binding_names_the_sandbox_without_a_token(admin_guard, admin):
    sb = admin.create(new_id(), client_address="127.0.0.1")
    try:
        s = requests.Session()
        s.trust_env = False
        r = s.get("https://guard.internal/", proxies=admin_guard.proxies, verify=admin_guard.ca)
        assert r.json()["sandbox"] == sb.id
        with pytest.raises(AdminError) as e:
            admin.create(new_id(), client_address="127.0.0.1")
        assert e.value.status == 409
    finally:
        admin.delete(sb.id)


def test_reset_puts_a_fork_back_to_its_fork_point_and_a_seeded_one_to_its_seed(admin_guard,
                                                                                admin):
    base = admin.create(new_id(), from_="stripe-catalogue")
    seeded = admin.get(base.id).objects
    sdk = stripe_client(admin_guard, base)
    sdk.v1.customers.create(params={"email": "before-fork@example.com"})
    fork = admin.fork(base.id, new_id("f"))
    at_fork = fork.objects
    assert at_fork > seeded
    stripe_client(admin_guard, fork).v1.customers.create(params={"email": "after@example.com"})
    assert admin.get(fork.id).objects > at_fork
    assert admin.reset(fork.id).objects == at_fork == admin.get(base.id).objects
    assert admin.reset(base.id).objects == seeded
    assert not [s for s in admin.snapshots() if s.id.startswith("origin:")]
    admin.delete(fork.id)


def test_a_policy_pack_from_policy_rules_applies_only_where_a_policy_names_it(admin_guard,
                                                                               admin):
    plain = admin.create(new_id())
    acme = admin.create(new_id(), policy={"packs": ["acme-internal"]})
    r = through(admin_guard, acme).get("https://api.acme.test/hello")
    assert r.status_code == 200 and r.json() == {"hello": "from the acme-internal pack"}
    assert r.headers["X-Guard-Rule"] == "acme-internal.hello"
    r = through(admin_guard, plain).get("https://api.acme.test/hello")
    assert r.status_code == 403 and r.json()["error"]["rule"] == "guard.default-deny"
    assert admin.get(acme.id).policy_label.startswith("sha256:")
