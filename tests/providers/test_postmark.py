"""Postmark through guard with plain requests."""

from __future__ import annotations

import base64
import uuid

import pytest
import requests

from tests.providers.saas_helpers import outbox_of

HEADERS = {"X-Postmark-Server-Token": "server-token", "Accept": "application/json"}


@pytest.fixture
def g(guard_proxy):
    return guard_proxy()


def post(g, path, body, headers=HEADERS):
    return requests.post(f"https://api.postmarkapp.com{path}", json=body, headers=headers,
                         proxies=g.proxies, verify=g.ca, timeout=10)


def test_an_email_is_answered_as_postmark_does_and_kept_in_the_outbox(g):
    r = post(g, "/email", {
        "From": "Shop <shop@example.com>", "To": "jenny@example.com, bob@example.com",
        "Bcc": "audit@example.com", "Subject": "Receipt", "TextBody": "Thanks",
        "HtmlBody": "<b>Thanks</b>", "Tag": "receipt", "MessageStream": "outbound",
        "Attachments": [{"Name": "r.txt", "Content": base64.b64encode(b"receipt").decode(),
                         "ContentType": "text/plain"}]})

    assert r.status_code == 200
    body = r.json()
    assert body["ErrorCode"] == 0 and body["Message"] == "OK"
    assert body["To"] == "jenny@example.com, bob@example.com"
    uuid.UUID(body["MessageID"])
    assert body["SubmittedAt"].endswith("+00:00")
    [rec] = outbox_of(g)
    assert rec["provider"] == "postmark" and rec["provider_id"] == body["MessageID"]
    assert rec["to"] == ["jenny@example.com", "bob@example.com"]
    assert rec["bcc"] == ["audit@example.com"] and rec["subject"] == "Receipt"
    assert rec["text"] == "Thanks" and rec["html"] == "<b>Thanks</b>"
    assert rec["attachments"] == [{"name": "r.txt", "size": 7, "content_type": "text/plain"}]
    assert rec["extra"] == {"Tag": "receipt", "MessageStream": "outbound"}
    assert g.upstream_attempts == []


def test_a_batch_answers_every_message_and_only_valid_ones_reach_the_outbox(g):
    r = post(g, "/email/batch", [
        {"From": "shop@example.com", "To": "a@example.com", "Subject": "1", "TextBody": "one"},
        {"From": "shop@example.com", "To": "b@", "Subject": "2", "TextBody": "two"},
        {"From": "shop@example.com", "To": "c@example.com", "Subject": "3", "HtmlBody": "3"},
    ])
    assert r.status_code == 200
    results = r.json()
    assert [x["ErrorCode"] for x in results] == [0, 300, 0]
    assert results[1]["Message"] == "Invalid 'To' address: 'b@'."
    assert [rec["subject"] for rec in outbox_of(g)] == ["1", "3"]


@pytest.mark.parametrize("body, message", [
    ({"From": "shop@example.com", "Subject": "x", "TextBody": "y"}, "Zero recipients specified"),
    ({"From": "shop@example.com", "To": "jenny@example.com", "Subject": "x"},
     "Provide either email TextBody or HtmlBody or both."),
    ({"To": "jenny@example.com", "TextBody": "y"}, "Invalid 'From' address: ''."),
])
def test_common_mistakes_are_422_with_error_code_300(g, body, message):
    r = post(g, "/email", body)
    assert r.status_code == 422 and r.json() == {"ErrorCode": 300, "Message": message}
    assert outbox_of(g) == []


def test_the_test_token_is_accepted_and_flagged(g):
    r = post(g, "/email", {"From": "shop@example.com", "To": "jenny@example.com",
                           "TextBody": "y"},
             headers={"X-Postmark-Server-Token": "POSTMARK_API_TEST"})
    assert r.status_code == 200 and outbox_of(g)[0]["extra"]["test_mode"] is True


def test_a_missing_token_is_a_401_with_error_code_10(g):
    r = post(g, "/email", {}, headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.json()["ErrorCode"] == 10
