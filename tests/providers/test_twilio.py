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
    ({"to": "whatsapp:+447700900123", "from_": "+14155550199", "body": "x"}, 21910,
     "Invalid From and To pair. From and To should be of the same channel"),
    ({"to": "+447700900123", "from_": "whatsapp:+14155550199", "body": "x"}, 21910,
     "Invalid From and To pair. From and To should be of the same channel"),
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


# Messaging Services (messaging.twilio.com) and senders

SERVICE = "MG" + "fedcba9876543210" * 2


def test_a_message_through_a_messaging_service_is_accepted_and_the_service_is_the_accounts(
        g, client):
    message = client.messages.create(to="+14155550100", messaging_service_sid=SERVICE,
                                     body="Your code is 1234")
    assert message.status == "accepted" and message.messaging_service_sid == SERVICE
    assert message.from_ is None
    service = client.messaging.v1.services(SERVICE).fetch()
    assert service.sid == SERVICE and service.account_sid == ACCOUNT
    assert service.friendly_name and service.date_created < datetime.now(UTC)
    assert service.url == f"https://messaging.twilio.com/v1/Services/{SERVICE}"
    assert [s.sid for s in client.messaging.v1.services.list()] == [SERVICE]
    [rec] = outbox_of(g)
    assert rec["from"] == SERVICE and rec["to"] == ["+14155550100"]
    assert g.upstream_attempts == []


def test_a_messaging_service_created_by_the_agent_is_listed_and_paged(g, client):
    made = client.messaging.v1.services.create(friendly_name="Order updates",
                                               sticky_sender=False)
    assert re.fullmatch(r"MG[0-9a-f]{32}", made.sid) and made.friendly_name == "Order updates"
    assert made.sticky_sender is False and made.account_sid == ACCOUNT
    client.messaging.v1.services(SERVICE).fetch()
    assert client.messaging.v1.services(made.sid).fetch().friendly_name == "Order updates"
    assert [s.sid for s in client.messaging.v1.services.stream(page_size=1)] == [
        made.sid, SERVICE]
    with pytest.raises(TwilioRestException) as info:
        client.messaging.v1.services.create(friendly_name="")
    assert info.value.status == 400 and info.value.code == 20001


def test_another_accounts_messaging_service_does_not_exist(g, client):
    other = Client("AC" + "1" * 32, "auth-token",
                   http_client=TwilioHttpClient(proxy={"https": g.url, "http": g.url}))
    other.messages.create(to="+14155550100", messaging_service_sid=SERVICE, body="mine")
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+14155550100", messaging_service_sid=SERVICE, body="x")
    assert info.value.status == 400 and info.value.code == 21701
    with pytest.raises(TwilioRestException) as info:
        client.messaging.v1.services(SERVICE).fetch()
    assert info.value.status == 404 and info.value.code == 20404
    assert client.messaging.v1.services.list() == []


def test_with_an_api_key_a_service_fetched_first_is_the_account_that_then_sends_through_it(
        g):
    keyed = Client("SK" + "2" * 32, "secret", ACCOUNT,
                   http_client=TwilioHttpClient(proxy={"https": g.url, "http": g.url}))
    first = keyed.messaging.v1.services(SERVICE).fetch()  # the request names no account
    assert re.fullmatch(r"AC[0-9a-f]{32}", first.account_sid)
    sent = keyed.messages.create(to="+14155550100", messaging_service_sid=SERVICE, body="x")
    assert sent.status == "accepted" and sent.account_sid == ACCOUNT
    assert keyed.messaging.v1.services(SERVICE).fetch().account_sid == ACCOUNT
    made = keyed.messaging.v1.services.create(friendly_name="Later")
    assert made.account_sid == ACCOUNT
    # the sandbox's account is settled: another account does not take the services over
    other = Client("AC" + "3" * 32, "t",
                   http_client=TwilioHttpClient(proxy={"https": g.url, "http": g.url}))
    with pytest.raises(TwilioRestException) as info:
        other.messages.create(to="+14155550100", messaging_service_sid=SERVICE, body="x")
    assert info.value.code == 21701


@pytest.mark.parametrize("sid", [
    "MG123", "MG" + "g" * 32, "mg" + "0" * 32, "MG" + "0" * 33, "\x00MG" + "0" * 32,
    "MG" + "0" * 31 + "\n", "MG" + "é" * 32, "MG\u202e" + "0" * 31, "MG" + "0" * 20000,
    "AC" + "0" * 32,
])
def test_a_malformed_messaging_service_sid_is_21705_and_never_looked_up(g, client, sid):
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+14155550100", messaging_service_sid=sid, body="x")
    assert info.value.status == 400 and info.value.code == 21705
    assert outbox_of(g) == [] and g.upstream_attempts == []
    assert g.worlds.world("127.0.0.1").list("twilio_services") == []


@pytest.mark.parametrize("sid", ["MG123", "%00MG" + "0" * 32, "MG%0A" + "0" * 30,
                                 "MG" + "%C3%A9" * 32, "MG" + "0" * 4000, "..%2F..%2Fv1"])
def test_a_malformed_service_sid_in_the_path_is_a_20404(g, sid):
    r = requests.get(f"https://messaging.twilio.com/v1/Services/{sid}", auth=(ACCOUNT, "t"),
                     proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == 20404
    assert g.upstream_attempts == []
    assert g.worlds.world("127.0.0.1").list("twilio_services") == []


def test_other_messaging_apis_are_blocked_and_never_reach_twilio(g):
    r = requests.get(f"https://messaging.twilio.com/v1/Services/{SERVICE}/PhoneNumbers",
                     auth=(ACCOUNT, "t"), proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 403 and r.headers["X-Guard-Rule"] == "twilio.other"
    assert g.upstream_attempts == []


def test_an_alphanumeric_sender_id_reaches_countries_that_take_it_but_not_the_us(g, client):
    message = client.messages.create(to="+447700900123", from_="ACME", body="Your code")
    assert message.status == "queued" and message.from_ == "ACME"
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+14155550100", from_="ACME", body="x")
    assert info.value.status == 400 and info.value.code == 21612
    assert "'From' phone number: ACME" in info.value.msg
    for bad in ("ACME PAYMENTS", "AC/ME", "12345"):  # 13 characters, a slash, no letter
        with pytest.raises(TwilioRestException) as info:
            client.messages.create(to="+447700900123", from_=bad, body="x")
        assert info.value.code == 21212
    [rec] = outbox_of(g)
    assert rec["from"] == "ACME"
    assert g.worlds.world("127.0.0.1").list("twilio_numbers") == []  # no number was made


def test_an_error_echoing_control_characters_is_still_well_formed_xml(g):
    import xml.etree.ElementTree as ET

    r = requests.post(f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages",
                      data={"To": "+1\x00\x1b", "From": "+14155550199", "Body": "x"},
                      auth=(ACCOUNT, "auth-token"), proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 400
    assert ET.fromstring(r.content).findtext("RestException/Code") == "21211"


# The account's phone numbers (IncomingPhoneNumbers)

def test_the_from_number_is_listed_among_the_accounts_numbers(g, client):
    client.messages.create(to="+14155550100", from_="+14155550199", body="hi")
    [number] = client.incoming_phone_numbers.list()
    assert number.phone_number == "+14155550199" and number.friendly_name == "(415) 555-0199"
    assert re.fullmatch(r"PN[0-9a-f]{32}", number.sid) and number.capabilities["sms"] is True
    assert number.account_sid == ACCOUNT and number.date_created < datetime.now(UTC)
    assert client.incoming_phone_numbers(number.sid).fetch().phone_number == "+14155550199"
    # naming a number in the filter is a reference: the agent's configured number exists
    [other] = client.incoming_phone_numbers.list(phone_number="+14155550142")
    assert other.phone_number == "+14155550142"
    assert [n.phone_number for n in client.incoming_phone_numbers.list(
        phone_number="555014")] == ["+14155550142"]
    assert [n.sid for n in client.incoming_phone_numbers.stream(page_size=1)] == [
        number.sid, other.sid]
    assert g.upstream_attempts == []


def test_a_configured_number_sid_is_one_of_the_accounts_numbers(g, client):
    sid = "PN" + "ab" * 16
    number = client.incoming_phone_numbers(sid).fetch()
    assert number.sid == sid and re.fullmatch(r"\+1[2-9]\d\d55501\d\d", number.phone_number)
    assert client.incoming_phone_numbers(sid).fetch().phone_number == number.phone_number
    sent = client.messages.create(to="+14155550100", from_=number.phone_number, body="x")
    assert sent.status == "queued"
    assert len(client.incoming_phone_numbers.list()) == 1


def test_another_accounts_number_cannot_send_and_is_not_listed(g, client):
    other = Client("AC" + "4" * 32, "t",
                   http_client=TwilioHttpClient(proxy={"https": g.url, "http": g.url}))
    other.messages.create(to="+14155550100", from_="+14155550199", body="mine")
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+14155550100", from_="+14155550199", body="x")
    assert info.value.code == 21606
    assert client.incoming_phone_numbers.list() == []


@pytest.mark.parametrize("sid", ["PN123", "PN" + "z" * 32, "%00PN" + "0" * 32,
                                 "PN" + "%C3%A9" * 32, "PN" + "0" * 4000])
def test_a_malformed_number_sid_is_a_20404_and_makes_nothing(g, sid):
    r = requests.get(f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/"
                     f"IncomingPhoneNumbers/{sid}.json", auth=(ACCOUNT, "t"),
                     proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == 20404
    assert g.worlds.world("127.0.0.1").list("twilio_numbers") == []
    assert g.upstream_attempts == []
