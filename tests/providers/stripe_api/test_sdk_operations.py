"""Operations the installed stripe SDK knows and the vendored 2024-04-10 spec lacks: derived
from the SDK's generated code into guard/providers/stripe/spec/sdk3.json.gz
(tools/stripe_sdk_supplement.py) and answered like the spec's own; the ones not derived are
listed by tools/stripe_sdk_operations.py and answer Stripe's 404."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import stripe

from tests.providers.stripe_api.conftest import sdk

ROOT = Path(__file__).resolve().parents[3]
SUPPLEMENT = ROOT / "guard" / "providers" / "stripe" / "spec" / "sdk3.json.gz"


def listed() -> tuple[str, list[str]]:
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "stripe_sdk_operations.py")],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    head, *rest = out.splitlines()
    return head, [line.strip() for line in rest if line.startswith("  ")]


def supplement() -> dict[str, object]:
    return json.loads(gzip.decompress(SUPPLEMENT.read_bytes()))  # type: ignore[no-any-return]


def test_the_vendored_supplement_is_what_the_installed_sdk_gives():
    """Regenerating from the installed stripe-python changes nothing (run the tool after an
    SDK upgrade), and it says where it came from."""
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "stripe_sdk_supplement.py"),
                        "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    info = supplement()["info"]
    assert isinstance(info, dict) and info["x-stripePython"] == stripe.VERSION
    assert "MIT" in info["description"]


def test_the_list_marks_what_is_derived():
    head, ops = listed()
    assert "not in the vendored spec (2024-04-10)" in head and "derived from the SDK" in head
    assert "POST /v1/customers" not in [o.split(" (")[0] for o in ops]
    assert "GET /v1/billing/alerts" in ops  # derived: listed without a reason
    assert "POST /v2/billing/meter_event_stream" in ops
    underived = [o for o in ops if "(not derived: " in o]
    assert underived == [], underived  # stripe-python 16.1.0: every operation derives


def test_a_path_stripe_does_not_have_is_still_stripes_404(guard_proxy):
    g = guard_proxy()
    r = requests.post("https://api.stripe.com/v2/core/no_such_things", json={},
                      proxies=g.proxies, verify=g.ca,
                      headers={"Authorization": "Bearer sk_test_x"}, timeout=10)
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith("Unrecognized request URL")
    assert g.upstream_attempts == []


def test_every_derived_operation_answers_2xx_valid_against_its_derived_schema():
    """The measurement (tools/measure_stripe.py) over the supplement's operations: each
    answers its smallest valid request with a 2xx whose body validates."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from measure_stripe import run_spec  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "tools"))
    derived = {(m.upper(), p) for p, item in supplement()["paths"].items()  # type: ignore[attr-defined]
               for m in item}
    report = run_spec()
    results = [r for r in report.results
               if (r.operation.method, r.operation.path) in derived]
    assert len(results) == len(derived) > 150
    bad = [(r.operation.method, r.operation.path, r.problem) for r in results
           if r.problem is not None]
    assert bad == []


def test_billing_alerts_create_retrieve_list_and_act_through_the_sdk(stripe_guard):
    c, g = stripe_guard
    meter = c.v1.billing.meters.create({"display_name": "API calls", "event_name": "api_call",
                                        "default_aggregation": {"formula": "sum"}})
    alert = c.v1.billing.alerts.create({
        "alert_type": "usage_threshold", "title": "Too many calls",
        "usage_threshold": {"gte": 1000, "meter": meter.id, "recurrence": "one_time"}})
    assert isinstance(alert, stripe.billing.Alert) and alert.object == "billing.alert"
    assert alert.id.startswith("alrt_") and alert.title == "Too many calls"
    assert alert.usage_threshold is not None and alert.usage_threshold.gte == 1000
    assert alert.usage_threshold.meter == meter.id and alert.livemode is False
    assert c.v1.billing.alerts.retrieve(alert.id).title == "Too many calls"
    other = c.v1.billing.alerts.create({"alert_type": "usage_threshold", "title": "Second"})
    assert [a.id for a in c.v1.billing.alerts.list().data] == [other.id, alert.id]
    assert [a.id for a in c.v1.billing.alerts.list({"limit": 1}).auto_paging_iter()] == [
        other.id, alert.id]
    assert c.v1.billing.alerts.archive(alert.id).status == "archived"
    assert c.v1.billing.alerts.retrieve(alert.id).status == "archived"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.billing.alerts.retrieve("alrt_nope")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    assert g.upstream_attempts == []


def test_credit_grants_keep_state_and_update_through_the_sdk(stripe_guard):
    c, _ = stripe_guard
    cus = c.v1.customers.create({"email": "grant@example.com"})
    grant = c.v1.billing.credit_grants.create({
        "customer": cus.id, "category": "paid", "name": "Launch credit",
        "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 5000}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        "metadata": {"campaign": "launch"}})
    assert grant.id.startswith("credgr_") and grant.customer == cus.id
    assert grant.amount.monetary is not None and grant.amount.monetary.value == 5000
    assert grant.metadata["campaign"] == "launch" and grant.name == "Launch credit"
    updated = c.v1.billing.credit_grants.update(grant.id, {"metadata": {"campaign": "spring"}})
    assert updated.metadata["campaign"] == "spring"
    assert c.v1.billing.credit_grants.retrieve(grant.id).metadata["campaign"] == "spring"
    assert [x.id for x in c.v1.billing.credit_grants.list({"customer": cus.id}).data] == [
        grant.id]
    assert c.v1.billing.credit_grants.expire(grant.id).id == grant.id


def test_a_derived_update_of_a_hand_made_object_shares_its_state(stripe_guard):
    """POST /v1/checkout/sessions/{session} is newer than the spec: the derived update
    works on the session the hand-written create made."""
    c, _ = stripe_guard
    price = c.v1.prices.create({"currency": "usd", "unit_amount": 900,
                                "product_data": {"name": "Seat"}})
    session = c.v1.checkout.sessions.create({
        "mode": "payment", "success_url": "https://example.com/ok",
        "line_items": [{"price": price.id, "quantity": 1}]})
    c.v1.checkout.sessions.update(session.id, {"metadata": {"order": "77"}})
    assert c.v1.checkout.sessions.retrieve(session.id).metadata["order"] == "77"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.checkout.sessions.update("cs_test_nope", {"metadata": {"a": "b"}})
    assert info.value.http_status == 404


def test_objects_outside_the_agents_doing_exist_on_first_reference(stripe_guard):
    """Invoice payments have no create operation: an id names one (open world)."""
    c, _ = stripe_guard
    payment = c.v1.invoice_payments.retrieve("inpay_1AbC")
    assert payment.id == "inpay_1AbC" and payment.object == "invoice_payment"
    assert c.v1.invoice_payments.retrieve("inpay_1AbC").to_dict() == payment.to_dict()


@pytest.mark.parametrize(("call", "param", "code", "message"), [
    (lambda c: c.v1.billing.alerts.create({"alert_type": "usage_threshold", "title": "x",
                                           "titel": "y"}),
     "titel", "parameter_unknown", "Received unknown parameter: titel"),
    (lambda c: c.v1.billing.alerts.create({"alert_type": "usage_threshold"}),
     "title", "parameter_missing", "Missing required param: title."),
    (lambda c: c.v1.billing.alerts.create({"alert_type": "sometimes", "title": "x"}),
     "alert_type", None, "Invalid alert_type: must be one of usage_threshold"),
    (lambda c: c.v1.billing.alerts.create({
        "alert_type": "usage_threshold", "title": "x",
        "usage_threshold": {"gte": "lots", "meter": "mtr_1", "recurrence": "one_time"}}),
     "usage_threshold[gte]", "parameter_invalid_integer", "Invalid integer: lots"),
    (lambda c: c.v1.billing.alerts.list({"limit": "ten"}), "limit",
     "parameter_invalid_integer", "Invalid integer: ten"),
    (lambda c: c.v1.billing.credit_grants.create({
        "customer": "cus_1", "category": "paid",
        "amount": {"type": "monetary", "monetary": {"currency": "usdx", "value": 1}},
        "applicability_config": {"scope": {"price_type": "metered"}}}),
     "amount[monetary][currency]", None, "Invalid currency: usdx."),
])
def test_derived_operations_validate_like_stripe(stripe_guard, call, param, code, message):
    c, g = stripe_guard
    with pytest.raises(stripe.InvalidRequestError) as info:
        call(c)
    assert info.value.http_status == 400
    assert info.value.param == param and info.value.code == code
    assert str(info.value.user_message).startswith(message)
    assert g.upstream_attempts == []


def test_derived_operations_are_audited_under_their_own_rule(guard_proxy, tmp_path):
    g = guard_proxy(seed=3)
    sdk(g).v1.billing.alerts.list()
    g.stop()
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    hits = [e for e in events if e.get("rule") == "stripe.op.get-billing-alerts"]
    assert hits and hits[0]["action"] == "simulate" and hits[0]["status"] == 200
    assert hits[0]["upstream"] is False and "(from sdk3.json.gz)" in hits[0]["reason"]


def test_v2_event_destinations_through_the_sdk_v2_client(stripe_guard):
    """StripeClient().v2 sends JSON bodies and reads v2 lists (``data``,
    ``next_page_url``), v2 deletes and errors: all from guard."""
    c, g = stripe_guard
    made = [c.v2.core.event_destinations.create({
        "name": f"hook {i}", "type": "webhook_endpoint", "event_payload": "thin",
        "enabled_events": ["v1.billing.meter.error_report_triggered"],
        "webhook_endpoint": {"url": f"https://example.com/hook/{i}"},
        "metadata": {"n": str(i)}}) for i in range(3)]
    first = made[0]
    assert isinstance(first, stripe.v2.core.EventDestination)
    assert first.id.startswith("ed_") and first.object == "v2.core.event_destination"
    assert first.name == "hook 0" and first.event_payload == "thin"
    assert first.webhook_endpoint is not None
    assert first.webhook_endpoint.url == "https://example.com/hook/0"
    assert "T" in first.created  # RFC 3339, as v2 answers times
    assert c.v2.core.event_destinations.retrieve(first.id).name == "hook 0"
    page = c.v2.core.event_destinations.list({"limit": 2})
    assert isinstance(page, stripe.v2.ListObject) and len(page.data) == 2
    assert page.next_page_url is not None and page.next_page_url.startswith(
        "/v2/core/event_destinations?")
    assert page.previous_page_url is None
    assert [d.id for d in page.auto_paging_iter()] == [d.id for d in reversed(made)]
    updated = c.v2.core.event_destinations.update(first.id, {"description": "primary"})
    assert updated.description == "primary"
    assert c.v2.core.event_destinations.disable(first.id).status == "disabled"
    deleted = c.v2.core.event_destinations.delete(made[1].id)
    assert deleted.id == made[1].id and deleted.object == "v2.core.event_destination"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v2.core.event_destinations.retrieve(made[1].id)
    assert info.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v2.core.event_destinations.create({"name": "x", "type": "webhook_endpoint",
                                             "event_payload": "thin", "enabled_events": [],
                                             "colour": "red"})
    assert info.value.http_status == 400 and info.value.param == "colour"
    assert info.value.code == "parameter_unknown"
    assert g.upstream_attempts == []


def test_v2_bodies_are_json_and_form_bodies_are_refused(guard_proxy):
    g = guard_proxy(seed=5)
    url = "https://api.stripe.com/v2/core/event_destinations"
    auth = {"Authorization": "Bearer sk_test_x"}
    r = requests.post(url, data={"name": "x"}, proxies=g.proxies, verify=g.ca, headers=auth,
                      timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = requests.post(url, json={"name": "x", "type": "webhook_endpoint",
                                 "event_payload": "snapshot", "enabled_events": ["*"],
                                 "webhook_endpoint": {"url": "https://example.com/h"}},
                      proxies=g.proxies, verify=g.ca, headers=auth, timeout=10)
    assert r.status_code == 200 and r.json()["event_payload"] == "snapshot"
    assert g.upstream_attempts == []


def test_v2_events_and_meter_event_sessions_through_the_sdk(stripe_guard):
    c, _ = stripe_guard
    events = c.v2.core.events.list()
    assert isinstance(events, stripe.v2.ListObject) and events.next_page_url is None
    event = c.v2.core.events.retrieve("evt_test_65R1")
    assert event.id == "evt_test_65R1" and event.object == "v2.core.event"
    session = c.v2.billing.meter_event_session.create()
    assert session.object == "v2.billing.meter_event_session" and session.authentication_token
    adjustment = c.v2.billing.meter_event_adjustments.create({
        "event_name": "api_call", "type": "cancel", "cancel": {"identifier": "req_1"}})
    assert adjustment.object == "v2.billing.meter_event_adjustment"
    assert adjustment.event_name == "api_call"


def test_the_meter_event_stream_takes_a_session_token_on_its_own_host(stripe_guard):
    """The SDK's high-throughput path: a v2 meter event session, then its token as the key
    of a client sending to meter-events.stripe.com."""
    c, g = stripe_guard
    session = c.v2.billing.meter_event_session.create()
    token = session.authentication_token
    assert token and not token.startswith("sk_")
    stream = sdk(g, key=token)
    stream.v2.billing.meter_event_stream.create({"events": [{
        "event_name": "api_call", "identifier": "req_1",
        "payload": {"stripe_customer_id": "cus_1", "value": "3"}}]})
    with pytest.raises(stripe.InvalidRequestError) as info:
        stream.v2.billing.meter_event_stream.create({"events": [{"event_name": "api_call"}]})
    assert info.value.http_status == 400 and info.value.code == "parameter_missing"
    assert info.value.param == "events[0].payload"  # a JSON body's path
    with pytest.raises(stripe.AuthenticationError) as auth:  # a token no session gave out
        sdk(g, key=token + "x").v2.billing.meter_event_stream.create({"events": []})
    assert auth.value.http_status == 401
    assert g.upstream_attempts == []


def test_the_meter_events_host_answers_only_the_stream(guard_proxy):
    g = guard_proxy(seed=2)
    auth = {"Authorization": "Bearer sk_test_x"}
    r = requests.get("https://meter-events.stripe.com/v1/customers", proxies=g.proxies,
                     verify=g.ca, headers=auth, timeout=10)
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith("Unrecognized request URL")
    r = requests.post("https://api.stripe.com/v2/billing/meter_event_stream", json={
        "events": []}, proxies=g.proxies, verify=g.ca, headers=auth, timeout=10)
    assert r.status_code == 404
    r = requests.post("https://meter-events.stripe.com/v2/billing/meter_event_stream",
                      json={"events": []}, proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 401  # no token at all
    r = requests.post("https://meter-events.stripe.com/v2/billing/meter_event_stream",
                      json={"events": []}, proxies=g.proxies, verify=g.ca, timeout=10,
                      headers={"Authorization": "Bearer sk_live_nope"})
    assert r.status_code == 403, r.text  # the pack's live-key rule blocks it first
    assert g.upstream_attempts == []


def test_v2_accounts_and_their_persons_through_the_sdk(stripe_guard):
    c, g = stripe_guard
    acct = c.v2.core.accounts.create({
        "display_name": "Acme", "contact_email": "ops@acme.example",
        "identity": {"country": "us", "entity_type": "company"}, "include": ["identity"]})
    assert acct.id.startswith("acct_") and acct.object == "v2.core.account"
    assert acct.display_name == "Acme" and acct.contact_email == "ops@acme.example"
    assert c.v2.core.accounts.retrieve(acct.id).display_name == "Acme"
    assert [a.id for a in c.v2.core.accounts.list().data] == [acct.id]
    assert c.v2.core.accounts.update(acct.id, {"display_name": "Acme Inc"}).display_name == \
        "Acme Inc"
    person = c.v2.core.accounts.persons.create(acct.id, {"given_name": "Jenny",
                                                         "surname": "Rosen"})
    assert person.id.startswith("person_") and person.account == acct.id
    assert person.given_name == "Jenny"
    other = c.v2.core.accounts.create({"display_name": "Other"})
    assert c.v2.core.accounts.persons.list(other.id).data == []
    assert [p.id for p in c.v2.core.accounts.persons.list(acct.id).data] == [person.id]
    gone = c.v2.core.accounts.persons.delete(acct.id, person.id)
    assert gone.to_dict() == {"id": person.id, "object": "v2.core.account_person"}
    assert c.v2.core.accounts.persons.list(acct.id).data == []
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v2.core.accounts.persons.create("acct_nope", {"given_name": "X"})
    assert info.value.http_status == 404
    assert g.upstream_attempts == []


def test_v1_payment_records_and_tax_locations_keep_state(stripe_guard):
    c, _ = stripe_guard
    record = c.v1.payment_records.report_payment({
        "amount_requested": {"currency": "usd", "value": 1000}, "initiated_at": 1700000000,
        "payment_method_details": {"payment_method": "pm_card_visa"},
        "outcome": "guaranteed", "guaranteed": {"guaranteed_at": 1700000000}})
    assert record.object == "payment_record" and not record.id.startswith("obj_")
    assert c.v1.payment_records.retrieve(record.id).id == record.id
    loc = c.v1.tax.locations.create({"type": "performance", "address": {
        "country": "US", "postal_code": "94107"}})
    assert loc.object == "tax.location" and loc.address.postal_code == "94107"
    assert c.v1.tax.locations.retrieve(loc.id).id == loc.id
    assert [x.id for x in c.v1.tax.locations.list({"type": "performance"}).data] == [loc.id]


@pytest.mark.parametrize(("body", "message"), [
    (b"[]", "Invalid request: the body must be a JSON object."),
    (b'"x"', "Invalid request: the body must be a JSON object."),
    (b"{", "Invalid request: the body is not valid JSON."),
    (b"\xff\xfe", "Invalid request: the body is not valid JSON."),
    (b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}", "Invalid request: the body is not "
     "valid JSON."),
    (b'{"metadata": {"k": 1}}', "Invalid metadata.k: expected a string"),
    (b'{"enabled_events": "x"}', "Invalid enabled_events: expected an array"),
])
def test_hostile_v2_bodies_are_stripes_400(guard_proxy, body, message):
    g = guard_proxy(seed=1)
    r = requests.post("https://api.stripe.com/v2/core/event_destinations", data=body,
                      headers={"Authorization": "Bearer sk_test_x",
                               "Content-Type": "application/json"},
                      proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] == message
    assert g.upstream_attempts == []


def test_a_thin_event_notification_fetches_its_event_and_object_through_guard(stripe_guard):
    """The SDK's thin-event path: a signed notification parsed locally, then
    ``fetch_related_object()`` (the object guard keeps) and ``fetch_event()``
    (``GET /v2/core/events/{id}``, an event that exists outside the agent's doing)."""
    import hashlib
    import hmac
    import time

    c, g = stripe_guard
    meter = c.v1.billing.meters.create({"display_name": "Calls", "event_name": "call",
                                        "default_aggregation": {"formula": "count"}})
    payload = json.dumps({
        "id": "evt_test_65RM8sQhIuKmJ8FdJ3g", "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered", "livemode": False,
        "created": "2026-12-03T12:00:00.000Z",
        "related_object": {"id": meter.id, "type": "billing.meter",
                           "url": f"/v1/billing/meters/{meter.id}"}})
    secret, stamp = "whsec_test_thin", int(time.time())
    signature = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(),
                         hashlib.sha256).hexdigest()
    note = c.parse_event_notification(payload, f"t={stamp},v1={signature}", secret)
    related = note.fetch_related_object()
    assert related is not None and related.id == meter.id
    assert related.display_name == "Calls"  # the meter guard keeps
    event = note.fetch_event()
    assert event.id == "evt_test_65RM8sQhIuKmJ8FdJ3g" and event.object == "v2.core.event"
    assert note.fetch_event().to_dict() == event.to_dict()  # kept once made
    assert g.upstream_attempts == []


def test_v2_times_are_rfc_3339_as_the_sdks_docstrings_say(stripe_guard):
    c, _ = stripe_guard
    attest = {"directorship_declaration": {"date": "2026-11-30T09:15:00.000Z",
                                           "ip": "192.0.2.1"}}
    acct = c.v2.core.accounts.create({"display_name": "Dated",
                                      "identity": {"attestations": attest}})
    assert acct.object == "v2.core.account"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v2.core.accounts.create({"identity": {"attestations": {
            "directorship_declaration": {"date": "last tuesday"}}}})
    assert info.value.http_status == 400
    assert info.value.param == "identity.attestations.directorship_declaration.date"
