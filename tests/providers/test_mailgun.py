"""Mailgun through guard with plain requests (Mailgun's own examples use curl/requests)."""

from __future__ import annotations

import re

import pytest
import requests

from tests.providers.saas_helpers import outbox_of

KEY = ("api", "key-test")


@pytest.fixture
def g(guard_proxy):
    return guard_proxy()


def post(g, url, **kwargs):
    return requests.post(url, auth=KEY, proxies=g.proxies, verify=g.ca, timeout=10, **kwargs)


def test_a_multipart_message_with_attachments_is_queued_into_the_outbox(g):
    r = post(g, "https://api.mailgun.net/v3/mg.example.com/messages",
             data={"from": "Shop <shop@mg.example.com>", "to": ["jenny@example.com",
                                                               "Bob <bob@example.com>"],
                   "cc": "carol@example.com", "subject": "Invoice", "text": "See attached",
                   "html": "<p>See attached</p>", "o:tag": "invoice"},
             files=[("attachment", ("invoice.pdf", b"%PDF" + b"x" * 96, "application/pdf"))])

    assert r.status_code == 200
    body = r.json()
    assert body["message"] == "Queued. Thank you."
    assert re.fullmatch(r"<\d{14}\.[0-9a-f]{16}@mg\.example\.com>", body["id"])
    [rec] = outbox_of(g)
    assert rec["provider"] == "mailgun" and rec["rule"] == "mailgun.messages.send"
    assert rec["to"] == ["jenny@example.com", "Bob <bob@example.com>"]
    assert rec["cc"] == ["carol@example.com"] and rec["subject"] == "Invoice"
    assert rec["text"] == "See attached" and rec["html"] == "<p>See attached</p>"
    assert rec["attachments"] == [{"name": "invoice.pdf", "size": 100,
                                   "content_type": "application/pdf"}]
    assert rec["provider_id"] == body["id"].strip("<>")
    assert rec["extra"] == {"domain": "mg.example.com", "host": "api.mailgun.net",
                            "tags": ["invoice"]}
    assert g.upstream_attempts == []


def test_a_url_encoded_test_mode_message_on_the_eu_host_is_flagged(g):
    r = post(g, "https://api.eu.mailgun.net/v3/mg.example.eu/messages",
             data={"from": "shop@mg.example.eu", "to": "a@example.com, b@example.com",
                   "subject": "Hallo", "text": "Hallo", "o:testmode": "yes"})
    assert r.status_code == 200 and r.json()["id"].endswith("@mg.example.eu>")
    [rec] = outbox_of(g)
    assert rec["to"] == ["a@example.com", "b@example.com"] and rec["extra"]["test_mode"] is True


def test_a_mime_message_keeps_envelope_only_recipients_as_bcc(g):
    mime = (b"From: Shop <shop@mg.example.com>\r\nTo: jenny@example.com\r\n"
            b"Subject: Receipt\r\nContent-Type: text/plain\r\n\r\nThank you\r\n")
    r = post(g, "https://api.mailgun.net/v3/mg.example.com/messages.mime",
             data={"to": ["jenny@example.com", "audit@example.com"]},
             files={"message": ("message.mime", mime)})
    assert r.status_code == 200
    [rec] = outbox_of(g)
    assert rec["rule"] == "mailgun.messages.send-mime" and rec["subject"] == "Receipt"
    assert rec["to"] == ["jenny@example.com"] and rec["bcc"] == ["audit@example.com"]
    assert rec["text"] == "Thank you\n"


@pytest.mark.parametrize("data, message", [
    ({"from": "shop@mg.example.com", "text": "x"}, "'to' parameter is missing"),
    ({"to": "jenny@example.com", "text": "x"}, "'from' parameter is missing"),
    ({"from": "shop@mg.example.com", "to": "jenny@", "text": "x"},
     "'to' parameter is not a valid address. please check documentation"),
    ({"from": "shop@mg.example.com", "to": "jenny@example.com", "subject": "x"},
     "Need at least one of 'text', 'html' or 'template' parameters specified"),
])
def test_common_mistakes_get_mailguns_400_messages(g, data, message):
    r = post(g, "https://api.mailgun.net/v3/mg.example.com/messages", data=data)
    assert r.status_code == 400 and r.json() == {"message": message}
    assert outbox_of(g) == []


def test_without_an_api_key_mailgun_answers_forbidden(g):
    r = requests.post("https://api.mailgun.net/v3/mg.example.com/messages",
                      data={"to": "a@example.com"}, proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 401 and r.text == "Forbidden"
