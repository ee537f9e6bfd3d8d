"""The official slack_sdk (WebClient and WebhookClient), through guard."""

from __future__ import annotations

import re
import ssl

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from tests.providers.saas_helpers import outbox_of

TS = re.compile(r"^\d{10}\.\d{6}$")


@pytest.fixture
def g(guard_proxy):
    return guard_proxy()


@pytest.fixture
def tls(g):
    return ssl.create_default_context(cafile=g.ca)


@pytest.fixture
def slack(g, tls):
    return WebClient(token="xoxb-guard-test", proxy=g.url, ssl=tls)


def test_a_message_is_posted_updated_and_deleted_and_the_outbox_keeps_what_was_said(g, slack):
    posted = slack.chat_postMessage(channel="#general", text="Deploy finished :rocket:")
    assert posted["ok"] is True and TS.match(posted["ts"])
    channel = posted["channel"]
    assert re.fullmatch(r"C[A-Z0-9]{10}", channel)
    assert posted["message"]["text"] == "Deploy finished :rocket:"
    assert posted["message"]["bot_id"].startswith("B")

    updated = slack.chat_update(channel=channel, ts=posted["ts"], text="Deploy rolled back")
    assert updated["ts"] == posted["ts"] and updated["text"] == "Deploy rolled back"
    deleted = slack.chat_delete(channel=channel, ts=posted["ts"])
    assert deleted["ok"] and deleted["ts"] == posted["ts"]

    first, second = outbox_of(g)
    assert first["provider"] == "slack" and first["kind"] == "chat"
    assert first["to"] == ["#general"] and first["text"] == "Deploy finished :rocket:"
    assert first["provider_id"] == posted["ts"] and first["extra"]["channel_id"] == channel
    assert second["text"] == "Deploy rolled back" and second["extra"]["edit_of"] == posted["ts"]
    assert g.upstream_attempts == []


def test_a_thread_reply_and_blocks_are_kept(g, slack):
    parent = slack.chat_postMessage(channel="engineering", text="Release 1.2")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*notes*"}}]
    reply = slack.chat_postMessage(channel=parent["channel"], thread_ts=parent["ts"],
                                   text="notes", blocks=blocks)
    assert reply["message"]["thread_ts"] == parent["ts"]
    assert reply["message"]["blocks"] == blocks
    rec = outbox_of(g)[-1]
    assert rec["extra"]["thread_ts"] == parent["ts"] and rec["extra"]["blocks"] == blocks


def test_conversations_and_users_come_from_the_sandbox_workspace(g, slack):
    listed = slack.conversations_list(limit=2)
    names = [c["name"] for c in listed["channels"]]
    assert names == ["general", "random"]
    cursor = listed["response_metadata"]["next_cursor"]
    rest = slack.conversations_list(limit=2, cursor=cursor)
    assert [c["name"] for c in rest["channels"]] == ["engineering", "alerts"]
    assert rest["response_metadata"]["next_cursor"] == ""
    general = listed["channels"][0]
    assert general["is_general"] is True and general["is_channel"] is True

    me = slack.auth_test()
    user = slack.users_info(user=general["creator"])["user"]
    assert user["id"] == general["creator"] and user["team_id"] == me["team_id"]
    assert user["is_admin"] is True and "@" in user["profile"]["email"]
    bot = slack.users_info(user=me["user_id"])["user"]
    assert bot["is_bot"] is True


def test_the_same_seed_gives_the_same_workspace(guard_proxy, tls):
    ids = []
    for _ in range(2):
        g = guard_proxy(seed=7)
        client = WebClient(token="xoxb-guard-test", proxy=g.url, ssl=tls)
        ids.append([c["id"] for c in client.conversations_list()["channels"]])
        g.stop()
    assert ids[0] == ids[1]


def test_posting_to_a_user_opens_a_direct_message(g, slack):
    me = slack.auth_test()
    creator = slack.conversations_list()["channels"][0]["creator"]
    posted = slack.chat_postMessage(channel=creator, text="psst")
    assert posted["channel"].startswith("D") and posted["channel"] != me["user_id"]
    assert outbox_of(g)[-1]["to"] == [f"@{creator}"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize("call, error", [
    (lambda s: s.chat_postMessage(channel="No Such Channel", text="x"), "channel_not_found"),
    (lambda s: s.chat_postMessage(channel="#general"), "no_text"),
    (lambda s: s.chat_update(channel="general", ts="1.000001", text="x"), "message_not_found"),
    (lambda s: s.chat_delete(channel="general", ts="1.000001"), "message_not_found"),
    (lambda s: s.users_info(user="nobody"), "user_not_found"),
])
def test_slack_errors_are_http_200_with_ok_false(g, slack, call, error):
    with pytest.raises(SlackApiError) as info:
        call(slack)
    assert info.value.response.status_code == 200
    assert info.value.response["ok"] is False and info.value.response["error"] == error
    assert outbox_of(g) == []


def test_a_bad_token_is_invalid_auth(g, tls):
    with pytest.raises(SlackApiError) as info:
        WebClient(token="not-a-slack-token", proxy=g.url, ssl=tls).auth_test()
    assert info.value.response["error"] == "invalid_auth"


def test_an_incoming_webhook_says_ok_and_lands_in_the_outbox(g, tls):
    hook = WebhookClient("https://hooks.slack.com/services/T0001/B0001/secret", proxy=g.url,
                         ssl=tls)
    response = hook.send(text="Build #42 failed", blocks=[{"type": "divider"}])
    assert response.status_code == 200 and response.body == "ok"
    [rec] = outbox_of(g)
    assert rec["rule"] == "slack.webhook" and rec["text"] == "Build #42 failed"
    assert rec["to"] == ["webhook:T0001/B0001"] and rec["extra"]["blocks"] == [{"type": "divider"}]
    empty = hook.send_dict({"username": "ci"})
    assert empty.status_code == 400 and empty.body == "no_text"
    assert g.upstream_attempts == []


# Direct and multi-person messages: conversations.open, .info, .history

def test_conversations_open_with_one_user_opens_a_dm_once(g, slack):
    opened = slack.conversations_open(users="U07ONCALL01")
    dm = opened["channel"]["id"]
    assert re.fullmatch(r"D[A-Z0-9]{10}", dm) and set(opened["channel"]) == {"id"}
    assert "already_open" not in opened.data
    again = slack.conversations_open(users=["U07ONCALL01"], return_im=True)
    assert again["already_open"] is True and again["no_op"] is True
    channel = again["channel"]
    assert channel["id"] == dm and channel["is_im"] is True and channel["user"] == "U07ONCALL01"
    # posting to the user and to the DM reach the same conversation
    assert slack.chat_postMessage(channel="U07ONCALL01", text="one")["channel"] == dm
    assert slack.chat_postMessage(channel=dm, text="two")["channel"] == dm
    assert slack.conversations_info(channel=dm)["channel"]["user"] == "U07ONCALL01"
    assert [m["text"] for m in slack.conversations_history(channel=dm)["messages"]] == [
        "two", "one"]
    assert [c["id"] for c in slack.conversations_list(types="im")["channels"]] == [dm]
    assert [r["to"] for r in outbox_of(g)] == [["@U07ONCALL01"], ["@U07ONCALL01"]]
    assert g.upstream_attempts == []


def test_conversations_open_with_several_users_opens_one_multi_person_message(g, slack):
    people = ["U07ALICE001", "U07BOBBY001"]
    opened = slack.conversations_open(users=",".join(people))
    mpim = opened["channel"]
    assert re.fullmatch(r"G[A-Z0-9]{10}", mpim["id"]) and mpim["is_mpim"] is True
    handles = [slack.users_info(user=u)["user"]["name"] for u in people]
    assert mpim["name"] == f"mpdm-guard-sandbox-app--{handles[0]}--{handles[1]}-1"
    again = slack.conversations_open(users=list(reversed(people)))
    assert again["channel"]["id"] == mpim["id"] and again["already_open"] is True
    assert slack.conversations_open(channel=mpim["id"])["channel"]["id"] == mpim["id"]
    posted = slack.chat_postMessage(channel=mpim["id"], text="standup?")
    assert posted["channel"] == mpim["id"]
    assert [c["id"] for c in slack.conversations_list(types="mpim")["channels"]] == [
        mpim["id"]]


@pytest.mark.parametrize("kwargs, error", [
    ({"users": ""}, "users_list_not_supplied"),
    ({"users": " , "}, "users_list_not_supplied"),
    ({"users": "nobody"}, "user_not_found"),
    ({"users": "U07ALICE001,nobody"}, "user_not_found"),
    ({"users": ",".join(f"U07PERSON{i:03d}" for i in range(9))}, "too_many_users"),
    ({"users": "U07ALICE001\x00"}, "user_not_found"),
    ({"users": "U07ÄLICE001"}, "user_not_found"),
    ({"users": "U" + "A" * 50000}, "user_not_found"),
    ({"channel": "#general"}, "method_not_supported_for_channel_type"),
    ({"channel": "no such channel"}, "channel_not_found"),
    ({"channel": "D07\x00NCALL1"}, "channel_not_found"),
    ({"users": "U07ALICE001", "prevent_creation": True}, "channel_not_found"),
])
def test_conversations_open_mistakes_are_slacks_errors(g, slack, kwargs, error):
    with pytest.raises(SlackApiError) as info:
        slack.conversations_open(**kwargs)
    assert info.value.response.status_code == 200
    assert info.value.response["error"] == error
    assert slack.conversations_list(types="im,mpim")["channels"] == []
    assert g.upstream_attempts == []


def test_history_pages_newest_first_and_keeps_thread_replies_in_their_thread(g, slack):
    first = slack.chat_postMessage(channel="#alerts", text="disk full")
    slack.chat_postMessage(channel="#alerts", text="on it", thread_ts=first["ts"])
    last = slack.chat_postMessage(channel="#alerts", text="disk ok")
    history = slack.conversations_history(channel="#alerts")
    assert [m["text"] for m in history["messages"]] == ["disk ok", "disk full"]
    assert history["messages"][1]["reply_count"] == 1 and history["has_more"] is False
    page = slack.conversations_history(channel="#alerts", limit=1)
    assert page["has_more"] is True and [m["ts"] for m in page["messages"]] == [last["ts"]]
    rest = slack.conversations_history(channel="#alerts", limit=1,
                                       cursor=page["response_metadata"]["next_cursor"])
    assert [m["ts"] for m in rest["messages"]] == [first["ts"]]
    bounded = slack.conversations_history(channel="#alerts", oldest=first["ts"])
    assert [m["ts"] for m in bounded["messages"]] == [last["ts"]]
    inclusive = slack.conversations_history(channel="#alerts", oldest=first["ts"],
                                            inclusive=True)
    assert len(inclusive["messages"]) == 2
    for bad in ({"oldest": "yesterday"}, {"latest": "NaN"}):
        with pytest.raises(SlackApiError) as info:
            slack.conversations_history(channel="#alerts", **bad)
        assert info.value.response["error"].startswith("invalid_ts_")
    with pytest.raises(SlackApiError) as info:
        slack.conversations_info(channel="nope!")
    assert info.value.response["error"] == "channel_not_found"


@pytest.mark.parametrize("channel", [
    "D07ONCALL0\x00", "\x1bD07ONCALL01", "D07ONCALL01\n", "D07ÖNCALL01", "D" + "A" * 50000,
    "C07DEPLOYS1\u202e", "#dep\x00loys", "d" * 100000, "D07-ONCALL",
])
def test_hostile_channel_ids_are_channel_not_found_and_make_nothing(g, slack, channel):
    before = len(slack.conversations_list(types="public_channel,im,mpim")["channels"])
    for call in (lambda: slack.chat_postMessage(channel=channel, text="x"),
                 lambda: slack.conversations_info(channel=channel),
                 lambda: slack.conversations_history(channel=channel)):
        with pytest.raises(SlackApiError) as info:
            call()
        assert info.value.response["error"] == "channel_not_found"
    after = slack.conversations_list(types="public_channel,im,mpim")["channels"]
    assert len(after) == before and outbox_of(g) == [] and g.upstream_attempts == []


def test_a_configured_g_id_is_a_private_channel(g, slack):
    assert slack.chat_postMessage(channel="G07PRIVATE1", text="x")["channel"] == "G07PRIVATE1"
    channel = slack.conversations_info(channel="G07PRIVATE1")["channel"]
    assert channel["is_private"] is True and channel["is_group"] is True
    assert channel["is_channel"] is False and channel["is_member"] is True
    assert "G07PRIVATE1" not in [c["id"] for c in slack.conversations_list()["channels"]]
    private = slack.conversations_list(types="private_channel")["channels"]
    assert [c["id"] for c in private] == ["G07PRIVATE1"]


def test_replies_show_a_thread_parent_first_from_its_parent_or_any_reply(g, slack):
    parent = slack.chat_postMessage(channel="#alerts", text="disk full")["ts"]
    one = slack.chat_postMessage(channel="#alerts", text="on it", thread_ts=parent)["ts"]
    two = slack.chat_postMessage(channel="#alerts", text="fixed", thread_ts=parent)["ts"]
    thread = slack.conversations_replies(channel="#alerts", ts=parent)
    assert [m["text"] for m in thread["messages"]] == ["disk full", "on it", "fixed"]
    assert thread["messages"][0]["reply_count"] == 2 and thread["has_more"] is False
    assert slack.conversations_replies(channel="#alerts", ts=one)["messages"] == (
        thread["messages"])
    page = slack.conversations_replies(channel="#alerts", ts=parent, limit=2)
    assert page["has_more"] and [m["ts"] for m in page["messages"]] == [parent, one]
    rest = slack.conversations_replies(channel="#alerts", ts=parent, limit=2,
                                       cursor=page["response_metadata"]["next_cursor"])
    assert [m["ts"] for m in rest["messages"]] == [two]
    lone = slack.chat_postMessage(channel="#alerts", text="lone")["ts"]
    assert [m["ts"] for m in slack.conversations_replies(channel="#alerts",
                                                         ts=lone)["messages"]] == [lone]
    for ts, error in (("1.000001", "thread_not_found"), ("", "invalid_arguments"),
                      ("\x00", "thread_not_found")):
        with pytest.raises(SlackApiError) as info:
            slack.conversations_replies(channel="#alerts", ts=ts)
        assert info.value.response["error"] == error
