"""Resend through guard with plain requests."""

from __future__ import annotations

import base64
import uuid

import pytest
import requests

from tests.providers.saas_helpers import outbox_of

AUTH = {"Authorization": "Bearer re_test_123"}


@pytest.fixture
def g(guard_proxy):
    return guard_proxy()


def call(g, method, path, body=None, headers=AUTH):
    return requests.request(method, f"https://api.resend.com{path}", json=body, headers=headers,
                            proxies=g.proxies, verify=g.ca, timeout=10)


def test_an_email_is_sent_retrievable_and_in_the_outbox(g):
    r = call(g, "POST", "/emails", {
        "from": "Acme <onboarding@acme.test>", "to": ["jenny@example.com"],
        "cc": "boss@example.com", "subject": "Welcome", "html": "<p>Hi Jenny</p>",
        "text": "Hi Jenny", "tags": [{"name": "category", "value": "welcome"}],
        "attachments": [{"filename": "terms.txt",
                         "content": base64.b64encode(b"terms!").decode()}]})
    assert r.status_code == 200
    email_id = r.json()["id"]
    uuid.UUID(email_id)

    got = call(g, "GET", f"/emails/{email_id}").json()
    assert got["object"] == "email" and got["id"] == email_id
    assert got["to"] == ["jenny@example.com"] and got["subject"] == "Welcome"
    assert got["cc"] == ["boss@example.com"] and got["bcc"] == [None]

    [rec] = outbox_of(g)
    assert rec["provider"] == "resend" and rec["provider_id"] == email_id
    assert rec["from"] == "Acme <onboarding@acme.test>" and rec["to"] == ["jenny@example.com"]
    assert rec["subject"] == "Welcome" and rec["text"] == "Hi Jenny"
    assert rec["html"] == "<p>Hi Jenny</p>"
    assert rec["attachments"] == [{"name": "terms.txt", "size": 6, "content_type": None}]
    assert rec["extra"]["tags"] == [{"name": "category", "value": "welcome"}]
    assert g.upstream_attempts == []


def test_a_batch_sends_every_email_or_none(g):
    ok = call(g, "POST", "/emails/batch", [
        {"from": "a@acme.test", "to": "x@example.com", "subject": "1", "text": "1"},
        {"from": "a@acme.test", "to": "y@example.com", "subject": "2", "text": "2"}])
    assert ok.status_code == 200 and len(ok.json()["data"]) == 2
    bad = call(g, "POST", "/emails/batch", [
        {"from": "a@acme.test", "to": "z@example.com", "subject": "3", "text": "3"},
        {"from": "a@acme.test", "to": "not an address", "subject": "4", "text": "4"}])
    assert bad.status_code == 422 and bad.json()["name"] == "validation_error"
    assert [rec["subject"] for rec in outbox_of(g)] == ["1", "2"]


@pytest.mark.parametrize("body, name, message", [
    ({"from": "a@acme.test", "subject": "x", "html": "y"}, "missing_required_field",
     "Missing `to` field."),
    ({"from": "a@acme.test", "to": "jenny@example.com", "html": "y"},
     "missing_required_field", "Missing `subject` field."),
    ({"from": "a@acme.test", "to": " jenny@", "subject": "x", "html": "y"},
     "validation_error", "Invalid `to` field. The email address needs to follow the "
     "`email@example.com` or `Name <email@example.com>` format."),
])
def test_common_mistakes_are_resend_422s(g, body, name, message):
    r = call(g, "POST", "/emails", body)
    assert r.status_code == 422
    assert r.json() == {"statusCode": 422, "name": name, "message": message}
    assert outbox_of(g) == []


def test_a_missing_api_key_is_a_401(g):
    r = call(g, "POST", "/emails", {}, headers={})
    assert r.status_code == 401 and r.json()["name"] == "missing_api_key"
