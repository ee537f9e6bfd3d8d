"""The official boto3 SES clients (``sesv2`` and ``ses``), through guard, in several regions."""

from __future__ import annotations

import re
from email.message import EmailMessage

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.providers.saas_helpers import outbox_of

MESSAGE_ID = re.compile(r"^0100[0-9a-f]{12}-[0-9a-f-]{36}-000000$")


@pytest.fixture
def g(guard_proxy):
    return guard_proxy()


def client(g, service: str, region: str = "us-east-1"):
    return boto3.client(service, region_name=region, aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="guard-test-secret", verify=g.ca,
                        config=Config(proxies={"https": g.url},
                                      retries={"max_attempts": 1, "mode": "standard"}))


def test_sesv2_sends_a_simple_email_into_the_outbox(g):
    out = client(g, "sesv2", "eu-west-1").send_email(
        FromEmailAddress="shop@example.com",
        Destination={"ToAddresses": ["jenny@example.com"], "CcAddresses": ["cc@example.com"]},
        Content={"Simple": {"Subject": {"Data": "Your order"},
                            "Body": {"Text": {"Data": "Thanks"},
                                     "Html": {"Data": "<p>Thanks</p>"}}}},
        ConfigurationSetName="transactional")

    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert MESSAGE_ID.match(out["MessageId"])
    [rec] = outbox_of(g)
    assert rec["provider"] == "ses" and rec["rule"] == "ses.v2.send-email"
    assert rec["from"] == "shop@example.com" and rec["to"] == ["jenny@example.com"]
    assert rec["cc"] == ["cc@example.com"] and rec["subject"] == "Your order"
    assert rec["text"] == "Thanks" and rec["html"] == "<p>Thanks</p>"
    assert rec["provider_id"] == out["MessageId"]
    assert rec["extra"] == {"api": "v2", "region": "eu-west-1",
                            "ConfigurationSetName": "transactional"}
    assert g.upstream_attempts == []


def test_sesv2_sends_a_raw_message_with_an_attachment(g):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "shop@example.com", "jenny@example.com", "Invoice"
    msg.set_content("Invoice attached")
    msg.add_attachment(b"%PDF-1.4" * 4, maintype="application", subtype="pdf",
                       filename="invoice.pdf")
    out = client(g, "sesv2", "ap-southeast-2").send_email(
        Destination={"ToAddresses": ["jenny@example.com"], "BccAddresses": ["audit@example.com"]},
        Content={"Raw": {"Data": msg.as_bytes()}})
    assert MESSAGE_ID.match(out["MessageId"])
    [rec] = outbox_of(g)
    assert rec["to"] == ["jenny@example.com"] and rec["bcc"] == ["audit@example.com"]
    assert rec["subject"] == "Invoice" and rec["text"] == "Invoice attached\n"
    assert rec["attachments"] == [{"name": "invoice.pdf", "size": 32,
                                   "content_type": "application/pdf"}]
    assert rec["extra"]["region"] == "ap-southeast-2"


def test_sesv2_without_recipients_is_a_bad_request_exception(g):
    with pytest.raises(ClientError) as info:
        client(g, "sesv2").send_email(
            FromEmailAddress="shop@example.com",
            Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "y"}}}})
    err = info.value.response["Error"]
    assert err["Code"] == "BadRequestException"
    assert err["Message"] == "Missing required header 'To'."
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert outbox_of(g) == []


def test_ses_v1_send_email_answers_xml_that_boto3_parses(g):
    out = client(g, "ses", "us-west-2").send_email(
        Source="Shop <shop@example.com>",
        Destination={"ToAddresses": ["jenny@example.com", "bob@example.com"],
                     "BccAddresses": ["audit@example.com"]},
        Message={"Subject": {"Data": "Receipt"}, "Body": {"Text": {"Data": "Thank you"}}})
    assert MESSAGE_ID.match(out["MessageId"])
    assert re.match(r"^[0-9a-f-]{36}$", out["ResponseMetadata"]["RequestId"])
    [rec] = outbox_of(g)
    assert rec["rule"] == "ses.v1.send-email" and rec["from"] == "Shop <shop@example.com>"
    assert rec["to"] == ["jenny@example.com", "bob@example.com"]
    assert rec["bcc"] == ["audit@example.com"] and rec["subject"] == "Receipt"
    assert rec["text"] == "Thank you" and rec["extra"] == {"api": "v1", "region": "us-west-2"}


def test_ses_v1_send_raw_email_reads_the_mime_message(g):
    raw = (b"From: shop@example.com\r\nTo: jenny@example.com\r\nSubject: Raw hello\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n<h1>Hello</h1>\r\n")
    out = client(g, "ses").send_raw_email(RawMessage={"Data": raw})
    assert MESSAGE_ID.match(out["MessageId"])
    [rec] = outbox_of(g)
    assert rec["subject"] == "Raw hello" and rec["html"] == "<h1>Hello</h1>\n"
    assert rec["text"] is None and rec["to"] == ["jenny@example.com"]


@pytest.mark.parametrize("to, message", [
    ([], "Missing required header 'To'."),
    (["jenny.example.com"], "Missing final '@domain'"),
])
def test_ses_v1_mistakes_are_invalid_parameter_value_errors(g, to, message):
    with pytest.raises(ClientError) as info:
        client(g, "ses").send_email(
            Source="shop@example.com", Destination={"ToAddresses": to},
            Message={"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "y"}}})
    err = info.value.response["Error"]
    assert (err["Code"], err["Message"], err["Type"]) == ("InvalidParameterValue", message,
                                                          "Sender")
    assert outbox_of(g) == []


def test_other_ses_actions_are_refused_in_a_way_boto3_can_read(g):
    with pytest.raises(ClientError) as info:
        client(g, "ses").verify_email_identity(EmailAddress="a@example.com")
    err = info.value.response["Error"]
    assert err["Code"] == "AccessDenied" and "VerifyEmailIdentity" in err["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert g.upstream_attempts == []


def test_an_unsigned_request_is_refused_like_ses_refuses_it(g):
    import requests

    r = requests.post("https://email.us-east-1.amazonaws.com/v2/email/outbound-emails",
                      json={"Content": {}}, proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 403
    assert r.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")
    assert r.json() == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize(("body", "where"), [
    ({"Destination": 7, "Content": {"Simple": {}}}, "Destination: expected an object"),
    ({"Destination": {"ToAddresses": "a@b.test"}, "Content": {"Simple": {}}},
     "Destination.ToAddresses: expected a list"),
    ({"Destination": {"ToAddresses": [1]}, "Content": {"Simple": {}}},
     "Destination.ToAddresses[0]: expected a string"),
    ({"FromEmailAddress": ["x"], "Destination": {"ToAddresses": ["a@b.test"]},
      "Content": {"Simple": {}}}, "FromEmailAddress: expected a string"),
    ({"Destination": {"ToAddresses": ["a@b.test"]},
      "Content": {"Simple": {"Subject": "hi", "Body": {}}}},
     "Content.Simple.Subject: expected an object"),
    ({"Destination": {"ToAddresses": ["a@b.test"]}, "Content": {"Raw": {"Data": {"a": 1}}}},
     "Content.Raw.Data: expected a string"),
    ({"Destination": {"ToAddresses": ["a@b.test"]}, "Content": {"Simple": {}},
      "EmailTags": [{"Name": 1}]}, "EmailTags[0].Name: expected a string"),
])
def test_sesv2_members_of_the_wrong_json_type_are_a_serialization_exception(g, body, where):
    # boto3 checks types before sending; plain HTTP clients do not, and SES answers them
    # with a 400, not a failure of guard's own
    import requests

    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/"
              "ses/aws4_request, SignedHeaders=host, Signature=ab"}
    r = requests.post("https://email.us-east-1.amazonaws.com/v2/email/outbound-emails",
                      json=body, headers=signed, proxies=g.proxies, verify=g.ca, timeout=10)
    assert r.status_code == 400, r.text
    assert r.headers["x-amzn-ErrorType"].startswith("SerializationException")
    assert r.json() == {"message": where}
    assert outbox_of(g) == [] and g.upstream_attempts == []
