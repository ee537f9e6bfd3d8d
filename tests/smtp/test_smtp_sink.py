"""The SMTP sink, judged by smtplib: STARTTLS, AUTH, the outbox and the audit log."""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
from email.message import EmailMessage

import pytest

from tests.providers.saas_helpers import outbox_of
from tests.sandboxes import token

SECRET = "hunter2-never-stored"


@pytest.fixture
def g(guard_proxy, tmp_path):
    return guard_proxy(smtp_port=0, smtps_port=0, state=tmp_path / "state")


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Shop <shop@example.com>"
    msg["To"] = "jenny@example.com"
    msg["Cc"] = "boss@example.com"
    msg["Subject"] = "Your receipt"
    msg.set_content("Thanks for your order.\n.\nA line with only a dot above.")
    msg.add_alternative("<p>Thanks for your order.</p>", subtype="html")
    msg.add_attachment(b"col1,col2\n1,2\n", maintype="text", subtype="csv",
                       filename="order.csv")
    return msg


def test_smtplib_submits_with_starttls_and_login_and_the_message_is_kept(g, tmp_path):
    tls = ssl.create_default_context(cafile=g.ca)
    with smtplib.SMTP("127.0.0.1", g.smtp_port, timeout=10) as smtp:
        code, features = smtp.ehlo("agent.sandbox")
        assert code == 250 and b"STARTTLS" in features
        smtp.starttls(context=tls)
        smtp.ehlo("agent.sandbox")
        assert smtp.login("agent", SECRET)[0] == 235
        refused = smtp.send_message(message(), to_addrs=["jenny@example.com",
                                                         "boss@example.com",
                                                         "hidden@example.com"])
        assert refused == {}

    [rec] = outbox_of(g)
    assert rec["provider"] == "smtp" and rec["rule"] == "guard.smtp.sink"
    assert rec["sandbox"] == "127.0.0.1" and rec["from"] == "Shop <shop@example.com>"
    assert rec["to"] == ["jenny@example.com"] and rec["cc"] == ["boss@example.com"]
    assert rec["bcc"] == ["hidden@example.com"] and rec["subject"] == "Your receipt"
    assert rec["text"] == "Thanks for your order.\n.\nA line with only a dot above.\n"
    assert rec["html"] == "<p>Thanks for your order.</p>\n"
    assert rec["attachments"] == [{"name": "order.csv", "size": 14,
                                   "content_type": "text/csv"}]
    assert rec["extra"]["tls"] is True and rec["extra"]["authenticated"] is True
    assert rec["extra"]["envelope_from"] == "shop@example.com"

    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    [event] = [e for e in events if e["method"] == "SMTP"]
    assert event["rule"] == "guard.smtp.sink" and event["action"] == "simulate"
    assert event["sandbox"] == "127.0.0.1" and event["status"] == 250
    change = event["changes"][0]
    assert (change["op"], change["collection"], change["id"]) == ("create", "outbox", rec["id"])
    assert event["outbox"] == [rec["id"]]
    # credentials are accepted and forgotten: in no log, state or outbox
    for path in [tmp_path / "audit.jsonl", *(tmp_path / "state").glob("*.jsonl")]:
        assert SECRET not in path.read_text()
    assert g.upstream_attempts == []


def test_auth_login_and_plain_without_tls_are_accepted_too(g):
    with smtplib.SMTP("127.0.0.1", g.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.user, smtp.password = "agent", SECRET
        assert smtp.auth("LOGIN", smtp.auth_login)[0] == 235
        smtp.sendmail("a@example.com", ["b@example.com"],
                      b"Subject: plain\r\n\r\n.starts with a dot\r\n")  # smtplib stuffs it
    [rec] = outbox_of(g)
    assert rec["text"] == ".starts with a dot\n"  # dot-unstuffed
    assert rec["bcc"] == ["b@example.com"] and rec["extra"]["tls"] is False


def test_implicit_tls_serves_a_certificate_for_the_name_the_client_asked_for(g):
    tls = ssl.create_default_context(cafile=g.ca)
    with socket.create_connection(("127.0.0.1", g.smtps_port), timeout=10) as raw, \
            tls.wrap_socket(raw, server_hostname="smtp.sendgrid.net") as conn:
        assert conn.recv(1024).startswith(b"220 ")
        cert = conn.getpeercert()
        assert ("DNS", "smtp.sendgrid.net") in cert["subjectAltName"]
    with smtplib.SMTP_SSL("127.0.0.1", g.smtps_port, context=tls, timeout=10) as smtp:
        smtp.login("agent", SECRET)
        smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: over 465\r\n\r\nhi\r\n")
    [rec] = outbox_of(g)
    assert rec["subject"] == "over 465" and rec["extra"]["tls"] is True


def test_protocol_mistakes_get_smtp_errors_and_nothing_is_kept(g):
    with smtplib.SMTP("127.0.0.1", g.smtp_port, timeout=10) as smtp:
        assert smtp.docmd("MAIL", "FROM:<a@example.com>")[0] == 503  # no EHLO yet
        smtp.ehlo()
        assert smtp.docmd("RCPT", "TO:<b@example.com>")[0] == 503  # no MAIL yet
        assert smtp.docmd("MAIL", "FROM:a@example.com")[0] == 501  # no angle brackets
        assert smtp.docmd("MAIL", "FROM:<a@example.com>")[0] == 250
        assert smtp.docmd("DATA")[0] == 503  # no RCPT yet
        assert smtp.docmd("RSET")[0] == 250 and smtp.noop()[0] == 250
        assert smtp.docmd("AUTH", "CRAM-MD5")[0] == 504
        assert smtp.docmd("BOGUS")[0] == 500
    assert outbox_of(g) == []


def test_a_line_over_the_line_limit_refuses_that_message_and_the_session_goes_on(g):
    from guard.smtp.session import LINE_LIMIT
    with smtplib.SMTP("127.0.0.1", g.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.docmd("MAIL", "FROM:<a@example.com>")[0] == 250
        assert smtp.docmd("RCPT", "TO:<b@example.com>")[0] == 250
        assert smtp.docmd("DATA")[0] == 354
        # The rest of the long line and the lines after it are not read as commands.
        smtp.send(b"Subject: long\r\n\r\n" + b"x" * (LINE_LIMIT + 10) + b"\r\n"
                  b"RSET\r\nQUIT\r\n.\r\n")
        code, text = smtp.getreply()
        assert code == 552 and b"too long" in text
        assert smtp.noop()[0] == 250
        smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: short\r\n\r\nok\r\n")
    assert [m["subject"] for m in outbox_of(g)] == ["short"]


def test_a_command_line_over_the_line_limit_ends_the_session_with_421(g):
    from guard.smtp.session import LINE_LIMIT
    with socket.create_connection(("127.0.0.1", g.smtp_port), timeout=30) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220")
        s.sendall(b"EHLO " + b"h" * (LINE_LIMIT + 10) + b"\r\n")
        assert f.readline().startswith(b"421")
    assert outbox_of(g) == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_with_sandbox_from_proxy_user_auth_with_the_token_proves_the_sandbox(guard_proxy,
                                                                             tmp_path,
                                                                             mechanism):
    g = guard_proxy(smtp_port=0, state=tmp_path / "state", sandbox_from="proxy-user")
    with smtplib.SMTP("127.0.0.1", g.smtp_port, timeout=10) as smtp:
        smtp.ehlo("agent")
        smtp.starttls(context=ssl.create_default_context(cafile=g.ca))
        smtp.ehlo("agent")
        smtp.user, smtp.password = "agent-7", token("agent-7")
        code, _ = smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"),
                            initial_response_ok=mechanism == "PLAIN")
        assert code == 235
        smtp.send_message(message())
    assert outbox_of(g) == []  # not the client address's sandbox
    [rec] = outbox_of(g, "agent-7")
    assert rec["sandbox"] == "agent-7" and rec["subject"] == "Your receipt"
    for path in [tmp_path / "audit.jsonl", *(tmp_path / "state").glob("*.jsonl")]:
        assert token("agent-7") not in path.read_text()


@pytest.mark.parametrize("password", [SECRET, "", "agent-7"])
def test_with_sandbox_from_proxy_user_a_claimed_auth_user_is_refused(guard_proxy, tmp_path,
                                                                     password):
    """The AUTH user alone (or with a wrong or another sandbox's token) proves nothing."""
    g = guard_proxy(smtp_port=0, state=tmp_path / "state", sandbox_from="proxy-user")
    with smtplib.SMTP("127.0.0.1", g.smtp_port, timeout=10) as smtp:
        smtp.ehlo("agent")
        smtp.starttls(context=ssl.create_default_context(cafile=g.ca))
        smtp.ehlo("agent")
        smtp.user, smtp.password = "agent-7", password or token("agent-8")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            smtp.auth("PLAIN", smtp.auth_plain, initial_response_ok=True)
        assert e.value.smtp_code == 535
        assert smtp.docmd("MAIL", "FROM:<a@example.com>")[0] == 530  # no AUTH: refused
    assert outbox_of(g, "agent-7") == [] and outbox_of(g) == []
