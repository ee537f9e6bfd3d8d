"""Open-world references (guard/synth/openworld.py), per provider, through a real proxy with
the official SDKs: what the agent is configured with exists on first reference, what it
creates answers not-found when unknown, a strict world holds only what it was seeded with,
and a seed pins objects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
import stripe
from github import Auth, Github, GithubException
from python_http_client.exceptions import ForbiddenError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from guard.client import Admin
from guard.synth import openworld
from tests.providers.saas_helpers import env_proxy, outbox_of
from tests.providers.stripe_api.conftest import sdk

ACCOUNT = "AC" + "0123456789abcdef" * 2
CHANNEL = "C07DEPLOYS1"


def seed(tmp_path: Path, collections: dict[str, dict[str, dict[str, object]]], *,
         strict: bool = False) -> str:
    """A ``--world`` seed file holding ``collections`` (and the strict setting)."""
    if strict:
        collections = {**collections, openworld.SETTINGS: {
            "settings": {"id": "settings", "strict": True}}}
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"v": 1, "sandbox": "seed", "collections": collections,
                                "counters": {}}))
    return str(path)


def slack(g) -> WebClient:
    import ssl

    return WebClient(token="xoxb-guard-test", proxy=g.url,
                     ssl=ssl.create_default_context(cafile=g.ca))


# Slack: channels and people of the real workspace

def test_a_configured_slack_channel_id_takes_a_message_and_stays_the_same_channel(
        guard_proxy):
    g = guard_proxy(seed=3)
    client = slack(g)
    posted = client.chat_postMessage(channel=CHANNEL, text="Deploy finished")
    assert posted["ok"] and posted["channel"] == CHANNEL
    listed = {c["id"]: c for c in client.conversations_list()["channels"]}
    channel = listed[CHANNEL]
    assert channel["is_member"] is True and re.fullmatch(r"[a-z]+-[a-z]+", channel["name"])
    assert channel["created"] < posted["message"]["bot_profile"]["updated"]
    again = client.chat_postMessage(channel=CHANNEL, text="and again")
    assert again["channel"] == CHANNEL
    assert [c["id"] for c in client.conversations_list()["channels"]].count(CHANNEL) == 1
    assert outbox_of(g)[0]["to"] == [f"#{channel['name']}"]
    # the same seed names the channel the same way
    other = guard_proxy(seed=3)
    slack(other).chat_postMessage(channel=CHANNEL, text="x")
    names = {c["id"]: c["name"] for c in slack(other).conversations_list()["channels"]}
    assert names[CHANNEL] == channel["name"]


def test_a_configured_slack_channel_name_and_user_id_exist_on_first_reference(guard_proxy):
    client = slack(guard_proxy())
    posted = client.chat_postMessage(channel="#deploys", text="hi")
    assert posted["ok"] and re.fullmatch(r"C[A-Z0-9]{10}", posted["channel"])
    assert client.chat_postMessage(channel="deploys", text="x")["channel"] == posted["channel"]
    person = client.users_info(user="U07ONCALL01")["user"]
    assert person["id"] == "U07ONCALL01" and person["is_bot"] is False
    assert person["real_name"] and "@" in person["profile"]["email"]
    assert client.users_info(user="U07ONCALL01")["user"] == person
    dm = client.chat_postMessage(channel="U07ONCALL01", text="you are on call")
    assert dm["channel"].startswith("D")


def test_what_the_slack_agent_posted_is_not_found_when_unknown(guard_proxy):
    client = slack(guard_proxy())
    with pytest.raises(SlackApiError) as info:
        client.chat_update(channel=CHANNEL, ts="1767225600.000001", text="edited")
    assert info.value.response["error"] == "message_not_found"


def test_a_strict_slack_world_knows_only_its_seeded_channels(guard_proxy, tmp_path):
    g = guard_proxy(world=seed(tmp_path, {"slack_channels": {"C0SEEDED01": {
        "id": "C0SEEDED01", "name": "ops", "is_channel": True, "is_member": True,
        "is_archived": False}}}, strict=True))
    client = slack(g)
    for ref in (CHANNEL, "#deploys"):
        with pytest.raises(SlackApiError) as info:
            client.chat_postMessage(channel=ref, text="x")
        assert info.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as info:
        client.users_info(user="U07ONCALL01")
    assert info.value.response["error"] == "user_not_found"
    assert client.chat_postMessage(channel="C0SEEDED01", text="x")["channel"] == "C0SEEDED01"
    assert client.chat_postMessage(channel="#ops", text="x")["channel"] == "C0SEEDED01"
    # the default channels are made with the workspace, strict or not
    assert client.chat_postMessage(channel="#general", text="x")["ok"]


def test_a_configured_slack_dm_id_is_the_bots_dm_with_a_person_the_same_under_a_seed(
        guard_proxy):
    seen = []
    for _ in range(2):
        g = guard_proxy(seed=4)
        client = slack(g)
        posted = client.chat_postMessage(channel="D07ONCALL01", text="you are on call")
        assert posted["ok"] and posted["channel"] == "D07ONCALL01"
        dm = client.conversations_info(channel="D07ONCALL01")["channel"]
        assert dm["is_im"] is True and dm["created"] < int(posted["ts"].split(".")[0])
        person = client.users_info(user=dm["user"])["user"]
        assert person["is_bot"] is False and "@" in person["profile"]["email"]
        history = client.conversations_history(channel="D07ONCALL01")["messages"]
        assert [m["text"] for m in history] == ["you are on call"]
        resumed = client.conversations_open(channel="D07ONCALL01")
        assert resumed["already_open"] and resumed["channel"]["id"] == "D07ONCALL01"
        by_user = client.conversations_open(users=dm["user"])
        assert by_user["already_open"] and by_user["channel"]["id"] == "D07ONCALL01"
        assert outbox_of(g)[0]["to"] == [f"@{dm['user']}"]
        seen.append((dm["user"], person["real_name"], dm["created"]))
    assert seen[0] == seen[1]


def test_a_strict_slack_world_knows_only_its_seeded_dms(guard_proxy, tmp_path):
    g = guard_proxy(world=seed(tmp_path, {
        "slack_channels": {"D0SEEDED01": {"id": "D0SEEDED01", "is_im": True,
                                          "user": "U0SEEDED01", "created": 1700000000}},
        "slack_users": {"U0SEEDED01": {"id": "U0SEEDED01", "name": "ops.oncall",
                                       "real_name": "Ops Oncall", "deleted": False}}},
        strict=True))
    client = slack(g)
    for call in (lambda: client.chat_postMessage(channel="D07ONCALL01", text="x"),
                 lambda: client.conversations_info(channel="D07ONCALL01"),
                 lambda: client.conversations_history(channel="D07ONCALL01"),
                 lambda: client.conversations_open(channel="D07ONCALL01")):
        with pytest.raises(SlackApiError) as info:
            call()
        assert info.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as info:
        client.conversations_open(users="U07ONCALL01")
    assert info.value.response["error"] == "user_not_found"
    assert client.chat_postMessage(channel="D0SEEDED01", text="x")["channel"] == "D0SEEDED01"
    opened = client.conversations_open(users="U0SEEDED01")
    assert opened["already_open"] and opened["channel"]["id"] == "D0SEEDED01"
    assert len(outbox_of(g)) == 1 and g.upstream_attempts == []


# GitHub: repositories

@pytest.fixture
def github_client():
    return Github(auth=Auth.Token("ghp_guardtest"), retry=None, seconds_between_requests=0,
                  seconds_between_writes=0)


def test_a_strict_github_world_has_only_its_seeded_repositories(guard_proxy, tmp_path,
                                                                monkeypatch, github_client):
    open_world = guard_proxy()
    env_proxy(monkeypatch, open_world)
    assert github_client.get_repo("acme/payments").full_name == "acme/payments"
    with pytest.raises(GithubException) as info:
        github_client.get_repo("acme/payments").get_issue(7)
    assert info.value.status == 404  # issues are the agent's own

    strict = guard_proxy(world=seed(tmp_path, {}, strict=True))
    env_proxy(monkeypatch, strict)
    with pytest.raises(GithubException) as info:
        github_client.get_repo("acme/payments")
    assert info.value.status == 404 and info.value.data["message"] == "Not Found"
    r = requests.post("https://api.github.com/repos/acme/payments/issues",
                      json={"title": "x"}, headers={"Authorization": "token ghp_x"}, timeout=10)
    assert r.status_code == 404
    assert outbox_of(strict) == []


def test_a_seeded_repository_exists_in_a_strict_world(guard_proxy, tmp_path, monkeypatch,
                                                      github_client):
    # a repository kept from an open-world run pins it: export it, seed it, go strict
    first = guard_proxy(seed=1)
    env_proxy(monkeypatch, first)
    github_client.get_repo("acme/payments")
    world = first.worlds.world("127.0.0.1")
    kept = {c: {o.get("id") or o.get("login", "").lower(): o for o in world.list(c)}
            for c in ("github_repos", "github_users")}
    kept["github_repos"] = {"acme/payments": world.get("github_repos", "acme/payments")}
    kept["github_users"] = {k: v for k, v in kept["github_users"].items() if k}
    g = guard_proxy(world=seed(tmp_path, kept, strict=True))
    env_proxy(monkeypatch, g)
    repo = github_client.get_repo("acme/payments")
    issue = repo.create_issue(title="Pinned")
    assert issue.number == 1 and repo.get_issue(1).title == "Pinned"
    with pytest.raises(GithubException):
        github_client.get_repo("acme/other")


# Twilio: the account's phone numbers

def twilio(g, monkeypatch) -> Client:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", g.ca)
    return Client(ACCOUNT, "auth-token",
                  http_client=TwilioHttpClient(proxy={"https": g.url, "http": g.url}))


def test_a_twilio_from_number_is_the_accounts_own_and_strict_worlds_refuse_others(
        guard_proxy, tmp_path, monkeypatch):
    g = guard_proxy()
    message = twilio(g, monkeypatch).messages.create(to="+14155550100", from_="+14155550199",
                                                     body="hi")
    assert message.status == "queued"
    number = g.worlds.world("127.0.0.1").get("twilio_numbers", "+14155550199")
    assert number is not None and re.fullmatch(r"PN[0-9a-f]{32}", number["sid"])
    assert number["friendly_name"] == "(415) 555-0199" and number["capabilities"]["sms"]
    with pytest.raises(TwilioRestException) as info:
        twilio(g, monkeypatch).messages("SM" + "0" * 32).fetch()
    assert info.value.status == 404  # messages are the agent's own

    strict = guard_proxy(world=seed(tmp_path, {"twilio_numbers": {"+14155550199": {
        "sid": "PN" + "1" * 32, "phone_number": "+14155550199"}}}, strict=True))
    client = twilio(strict, monkeypatch)
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+14155550100", from_="+14155550142", body="hi")
    assert info.value.status == 400 and info.value.code == 21606
    assert "+14155550142" in info.value.msg
    assert client.messages.create(to="+14155550100", from_="+14155550199",
                                  body="hi").status == "queued"
    assert client.messages.create(to="+14155550100", from_="+15005550006",
                                  body="magic").status == "queued"
    assert len(outbox_of(strict)) == 2
    # the numbers the agent can look up are the seeded ones only
    assert [n.phone_number for n in client.incoming_phone_numbers.list()] == ["+14155550199"]
    assert client.incoming_phone_numbers.list(phone_number="+14155550142") == []
    with pytest.raises(TwilioRestException) as info:
        client.incoming_phone_numbers("PN" + "2" * 32).fetch()
    assert info.value.status == 404 and info.value.code == 20404
    assert client.incoming_phone_numbers("PN" + "1" * 32).fetch().phone_number == (
        "+14155550199")


def test_a_twilio_messaging_service_exists_on_first_reference_the_same_under_a_seed(
        guard_proxy, monkeypatch):
    service_sid = "MG" + "0123456789abcdef" * 2
    seen = []
    for _ in range(2):
        g = guard_proxy(seed=11)
        client = twilio(g, monkeypatch)
        sent = client.messages.create(to="+14155550100", messaging_service_sid=service_sid,
                                      body="hi")
        assert sent.status == "accepted"
        service = client.messaging.v1.services(service_sid).fetch()
        assert service.account_sid == ACCOUNT and service.usecase
        assert service.date_created < g.worlds.world("127.0.0.1").clock.now()
        assert client.messaging.v1.services(service_sid).fetch().friendly_name == (
            service.friendly_name)
        seen.append((service.friendly_name, service.date_created))
    assert seen[0] == seen[1]


def test_a_strict_twilio_world_has_only_its_seeded_messaging_services(guard_proxy, tmp_path,
                                                                     monkeypatch):
    pinned = "MG" + "1" * 32
    g = guard_proxy(world=seed(tmp_path, {"twilio_services": {pinned: {
        "sid": pinned, "account_sid": ACCOUNT, "friendly_name": "Acme Alerts"}}},
        strict=True))
    client = twilio(g, monkeypatch)
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+14155550100", messaging_service_sid="MG" + "2" * 32,
                               body="x")
    assert info.value.status == 400 and info.value.code == 21701
    with pytest.raises(TwilioRestException) as info:
        client.messaging.v1.services("MG" + "2" * 32).fetch()
    assert info.value.status == 404 and info.value.code == 20404
    assert client.messages.create(to="+14155550100", messaging_service_sid=pinned,
                                  body="x").status == "accepted"
    assert client.messaging.v1.services(pinned).fetch().friendly_name == "Acme Alerts"
    assert [s.sid for s in client.messaging.v1.services.list()] == [pinned]
    # an alphanumeric sender needs no resource, strict or not
    assert client.messages.create(to="+447700900123", from_="ACME", body="x").from_ == "ACME"
    assert len(outbox_of(g)) == 2 and g.upstream_attempts == []


# SendGrid: verified senders

def mail(sender: str) -> Mail:
    return Mail(from_email=sender, to_emails="jenny@example.com", subject="Hi",
                plain_text_content="Hello")


def test_a_sendgrid_sender_is_verified_unless_the_world_is_strict(guard_proxy, tmp_path,
                                                                  monkeypatch):
    g = guard_proxy()
    env_proxy(monkeypatch, g)
    assert SendGridAPIClient("SG.test").send(mail("shop@acme.test")).status_code == 202
    sender = g.worlds.world("127.0.0.1").get("sendgrid_senders", "shop@acme.test")
    assert sender is not None and sender["verified"] is True

    strict = guard_proxy(world=seed(tmp_path, {"sendgrid_senders": {
        "billing@acme.test": {"id": "billing@acme.test", "verified": True},
        "@mail.acme.test": {"id": "@mail.acme.test", "domain": "mail.acme.test"}}},
        strict=True))
    env_proxy(monkeypatch, strict)
    with pytest.raises(ForbiddenError) as info:
        SendGridAPIClient("SG.test").send(mail("shop@acme.test"))
    [error] = json.loads(info.value.body)["errors"]
    assert error["field"] == "from" and "verified Sender Identity" in error["message"]
    assert outbox_of(strict) == []
    for sender_address in ("billing@acme.test", "anyone@mail.acme.test"):
        assert SendGridAPIClient("SG.test").send(mail(sender_address)).status_code == 202


# Mailgun: sending domains

def test_a_mailgun_domain_is_the_accounts_unless_the_world_is_strict(guard_proxy, tmp_path):
    def send(g, domain):
        return requests.post(f"https://api.mailgun.net/v3/{domain}/messages",
                             auth=("api", "key-test"), proxies=g.proxies, verify=g.ca,
                             timeout=10, data={"from": f"shop@{domain}",
                                               "to": "jenny@example.com", "text": "hi"})

    g = guard_proxy()
    assert send(g, "mg.acme.test").status_code == 200
    domain = g.worlds.world("127.0.0.1").get("mailgun_domains", "mg.acme.test")
    assert domain is not None and domain["state"] == "active"

    strict = guard_proxy(world=seed(tmp_path, {"mailgun_domains": {
        "mg.acme.test": {"id": "mg.acme.test", "name": "mg.acme.test", "state": "active"}}},
        strict=True))
    r = send(strict, "mg.other.test")
    assert r.status_code == 404 and r.json() == {"message": "Domain not found: mg.other.test"}
    assert send(strict, "mg.acme.test").status_code == 200
    assert len(outbox_of(strict)) == 1


# Stripe: prices of the real account

def test_a_stripe_price_from_the_real_account_exists_and_can_be_subscribed_to(guard_proxy):
    g = guard_proxy(seed=7)
    client = sdk(g)
    price = client.v1.prices.retrieve("price_1PgafmB7WZ01zgkW")
    assert price.id == "price_1PgafmB7WZ01zgkW" and price.active and price.currency == "usd"
    assert price.recurring and price.recurring.interval == "month" and price.unit_amount > 0
    product = client.v1.products.retrieve(str(price.product))
    assert product.default_price == price.id and product.name
    assert client.v1.prices.retrieve(price.id).unit_amount == price.unit_amount
    assert price.id in [p.id for p in client.v1.prices.list().data]
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    sub = client.v1.subscriptions.create(params={
        "customer": customer.id, "items": [{"price": "price_1PgafmB7WZ01zgkX"}],
        "payment_behavior": "default_incomplete"})
    assert sub["items"].data[0].price.id == "price_1PgafmB7WZ01zgkX"
    assert not [e for e in client.v1.events.list().data if e.type == "price.created"]
    # what the agent creates is not-found when unknown
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.retrieve("cus_NotMade0000")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.retrieve("not_a_price_id")


def test_a_strict_stripe_world_has_only_its_seeded_prices(guard_proxy):
    g = guard_proxy(seed=7, strict_world=True, world="stripe-catalogue")
    client = sdk(g)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.prices.retrieve("price_1PgafmB7WZ01zgkW")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    assert "No such price: 'price_1PgafmB7WZ01zgkW'" in str(info.value.user_message)
    seeded = client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]}).data
    assert len(seeded) == 1 and client.v1.prices.retrieve(seeded[0].id).id == seeded[0].id
    # description-built operations are strict too: an unknown dispute is not made
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.disputes.retrieve("dp_1NotThere000")
    assert info.value.http_status == 404


def test_a_sandbox_policy_can_make_its_world_strict(guard_proxy):
    from guard.sandbox.model import Policy

    assert Policy.parse({"strict_world": True}).strict_world is True
    g = guard_proxy(seed=7, admin_listen=("127.0.0.1", 0))
    client = sdk(g)
    with Admin(g.admin_url, g.admin_token) as admin:
        made = admin.create("strict-one", client_address="127.0.0.1",
                            policy={"strict_world": True})
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.prices.retrieve("price_1PgafmB7WZ01zgkW")
        admin.delete(made.id)
    assert client.v1.prices.retrieve("price_1PgafmB7WZ01zgkW").active
