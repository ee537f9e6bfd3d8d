"""The official twilio SDK, through guard, against the built-in Twilio pack."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.providers.saas_helpers import outbox_of

ACCOUNT = "AC" + "0123456789abcdef" * 2


@pytest.fixture
def g(guard_proxy, monkeypatch):
    running = guard_proxy()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.ca)  # TwilioHttpClient merges env settings
    return running


@pytest.fixture
def client(g):
    return Client(ACCOUNT, "auth-token",
                  http_client=TwilioHttpClient(proxy={"https": g.url, "http": g.url}))


def test_the_sdk_sends_an_sms_that_lands_in_the_outbox(g, client):
    before = datetime.now(UTC).replace(microsecond=0)
    message = client.messages.create(to="+14155550100", from_="+14155550199",
                                     body="Your code is 1234",
                                     status_callback="https://example.com/cb")

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued" and message.direction == "outbound-api"
    assert message.to == "+14155550100" and message.from_ == "+14155550199"
    assert message.body == "Your code is 1234" and message.account_sid == ACCOUNT
    assert message.num_segments == "1" and message.num_media == "0"
    assert message.date_created >= before  # parsed from RFC 2822 by the SDK
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{message.sid}.json"
    [rec] = outbox_of(g)
    assert rec["provider"] == "twilio" and rec["kind"] == "sms"
    assert rec["to"] == ["+14155550100"] and rec["from"] == "+14155550199"
    assert rec["text"] == "Your code is 1234" and rec["provider_id"] == message.sid
    assert g.upstream_attempts == []


def test_a_sent_message_can_be_fetched_and_listed_newest_first(g, client):
    first = client.messages.create(to="+14155550100", from_="+14155550199", body="one")
    second = client.messages.create(to="+14155550101", from_="+14155550199", body="two")
    fetched = client.messages(first.sid).fetch()
    assert fetched.sid == first.sid and fetched.body == "one"
    assert [m.sid for m in client.messages.list()] == [second.sid, first.sid]
    assert [m.body for m in client.messages.list(to="+14155550101")] == ["two"]
    # paging follows next_page_uri
    assert [m.sid for m in client.messages.stream(page_size=1)] == [second.sid, first.sid]


def test_a_whatsapp_message_with_media_is_a_chat_record(g, client):
    message = client.messages.create(to="whatsapp:+447700900123", from_="whatsapp:+14155550199",
                                     media_url=["https://example.com/cat.png"])
    assert message.num_media == "1"
    [rec] = outbox_of(g)
    assert rec["kind"] == "chat" and rec["attachments"][0]["name"] == "cat.png"


def test_a_long_unicode_message_counts_ucs2_segments(client):
    message = client.messages.create(to="+14155550100", from_="+14155550199", body="é✓" * 40)
    assert message.num_segments == "2"


@pytest.mark.parametrize("kwargs, code, text", [
    ({"to": "+1555", "from_": "+14155550199", "body": "x"}, 21211,
     "Invalid 'To' Phone Number: +1555"),
    ({"to": "+15005550009", "from_": "+14155550199", "body": "x"}, 21614,
     "'To' number is not a valid mobile number"),
    ({"to": "+14155550100", "from_": "+15005550001", "body": "x"}, 21212,
     "Invalid From Number (caller ID): +15005550001"),
    ({"to": "+14155550100", "body": "x"}, 21603, "A 'From' phone number is required."),
    ({"to": "+14155550100", "from_": "+14155550199"}, 21602, "Message body is required."),
])
def test_common_mistakes_raise_twilios_numbered_errors(g, client, kwargs, code, text):
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(**kwargs)
    assert info.value.status == 400 and info.value.code == code
    assert info.value.msg == f"Unable to create record: {text}"  # the SDK prefixes it
    assert outbox_of(g) == []


def test_fetching_an_unknown_message_is_a_20404(client):
    with pytest.raises(TwilioRestException) as info:
        client.messages("SM" + "0" * 32).fetch()
    assert info.value.status == 404 and info.value.code == 20404


def test_the_xml_representation_answers_paths_without_json(g):
    r = requests.post(f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages",
                      data={"To": "+14155550100", "From": "+14155550199", "Body": "xml"},
                      auth=(ACCOUNT, "auth-token"), proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 201 and r.headers["Content-Type"] == "application/xml"
    assert r.text.startswith("<TwilioResponse><Message><AccountSid>")
    assert "<Status>queued</Status>" in r.text and "<Body>xml</Body>" in r.text


def test_no_credentials_is_a_20003(g):
    r = requests.get(f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
                     proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == 20003
