"""The official sendgrid SDK, through guard, against the built-in SendGrid pack."""

from __future__ import annotations

import base64

import pytest
from python_http_client.exceptions import BadRequestsError, UnauthorizedError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Attachment, Mail

from tests.providers.saas_helpers import env_proxy, outbox_of


@pytest.fixture
def g(guard_proxy, monkeypatch):
    running = guard_proxy()
    env_proxy(monkeypatch, running)
    return running


def test_the_sdk_sends_a_mail_that_lands_in_the_outbox_and_nowhere_else(g):
    mail = Mail(from_email="shop@example.com", to_emails="jenny@example.com",
                subject="Your order", plain_text_content="Thanks!",
                html_content="<p>Thanks!</p>")
    mail.attachment = Attachment(base64.b64encode(b"%PDF-1.4 invoice").decode(),
                                 "invoice.pdf", "application/pdf")
    response = SendGridAPIClient("SG.test-key").send(mail)

    assert response.status_code == 202 and response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert len(message_id) == 22
    [rec] = outbox_of(g)
    assert rec["provider"] == "sendgrid" and rec["rule"] == "sendgrid.mail.send"
    assert rec["from"] == "shop@example.com" and rec["to"] == ["jenny@example.com"]
    assert rec["subject"] == "Your order" and rec["text"] == "Thanks!"
    assert rec["html"] == "<p>Thanks!</p>" and rec["provider_id"] == message_id
    assert rec["attachments"] == [{"name": "invoice.pdf", "size": 16,
                                   "content_type": "application/pdf"}]
    assert g.upstream_attempts == []


def test_each_personalization_is_its_own_outbox_record_on_the_eu_host(g):
    client = SendGridAPIClient("SG.test-key")
    client.set_sendgrid_data_residency("eu")
    mail = Mail(from_email="shop@example.com", to_emails=["a@example.com", "b@example.com"],
                subject="News", plain_text_content="Hello", is_multiple=True)
    assert client.send(mail).status_code == 202
    records = outbox_of(g)
    assert sorted(r["to"][0] for r in records) == ["a@example.com", "b@example.com"]
    assert {r["extra"]["host"] for r in records} == {"api.eu.sendgrid.com"}


def test_a_mail_without_a_subject_or_content_is_a_sendgrid_400(g):
    body = {"personalizations": [{"to": [{"email": "jenny@example.com"}]}],
            "from": {"email": "shop@example.com"}}
    with pytest.raises(BadRequestsError) as info:
        SendGridAPIClient("SG.test-key").client.mail.send.post(request_body=body)
    assert info.value.status_code == 400
    fields = [e["field"] for e in info.value.to_dict["errors"]]
    assert fields == ["subject", "content"]
    assert outbox_of(g) == []


def test_an_invalid_recipient_address_is_named_by_its_field(g):
    body = {"personalizations": [{"to": [{"email": "not-an-address"}]}],
            "from": {"email": "shop@example.com"}, "subject": "x",
            "content": [{"type": "text/plain", "value": "y"}]}
    with pytest.raises(BadRequestsError) as info:
        SendGridAPIClient("SG.test-key").client.mail.send.post(request_body=body)
    [error] = info.value.to_dict["errors"]
    assert error["field"] == "personalizations.0.to.0.email"
    assert error["message"] == "Does not contain a valid address."


def test_sandbox_mode_answers_200_and_the_outbox_flags_the_attempt(g):
    body = {"personalizations": [{"to": [{"email": "jenny@example.com"}]}],
            "from": {"email": "shop@example.com"}, "subject": "x",
            "content": [{"type": "text/plain", "value": "y"}],
            "mail_settings": {"sandbox_mode": {"enable": True}}}
    response = SendGridAPIClient("SG.test-key").client.mail.send.post(request_body=body)
    assert response.status_code == 200 and response.body == b""
    [rec] = outbox_of(g)
    assert rec["extra"]["test_mode"] is True and rec["to"] == ["jenny@example.com"]


def test_a_missing_api_key_is_a_401(g):
    client = SendGridAPIClient("unused")
    client.client.request_headers.pop("Authorization")
    with pytest.raises(UnauthorizedError) as info:
        client.client.mail.send.post(request_body={})
    assert info.value.to_dict["errors"][0]["message"] == "authorization required"
