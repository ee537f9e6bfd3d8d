"""A sandbox's simulated Slack workspace: team, channels, users and the app's bot.

Created on a sandbox's first Slack call (inside that request's transaction) from the
sandbox's random stream, so ``--seed`` gives the same ids every run. The default channels
are ``#general``, ``#random``, ``#engineering`` and ``#alerts``; a prepared world (a
snapshot with ``slack_channels`` / ``slack_users`` objects) can bring its own.

Open world (:mod:`guard.synth.openworld`): an agent is configured with the channels and
people of the real workspace, so a channel id (``C``/``G`` + 8-12 capitals and digits), a
channel name (``#deploys``), a direct-message id (``D`` + 8-12) or a user id (``U``/``W`` +
8-12) the workspace does not hold exists on first reference (a channel the bot is a member
of; the bot's DM with a person of the workspace; a person with a name and e-mail) and is
kept. Anything else, and everything in a strict world that the world does not hold,
answers ``channel_not_found`` / ``user_not_found``, as in a real workspace.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from guard.synth import openworld
from guard.synth.context import SimContext

CHANNELS = "slack_channels"
USERS = "slack_users"
TEAM = "slack_team"
DEFAULT_CHANNELS = {
    "general": "Company-wide announcements and work-based matters",
    "random": "Non-work banter and water cooler conversation",
    "engineering": "Engineering discussions",
    "alerts": "Automated alerts",
}
HUMANS = 3
ID_CHARS = string.ascii_uppercase + string.digits
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{8,12}")
USER_ID = re.compile(r"[UW][A-Z0-9]{8,12}")
IM_ID = re.compile(r"D[A-Z0-9]{8,12}")
CHANNEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")  # Slack's rule for channel names


@dataclass(frozen=True)
class Workspace:
    """The ids every answer needs."""

    team_id: str
    team_name: str
    domain: str
    bot_user_id: str
    bot_id: str
    app_id: str
    bot_name: str


def slack_id(ctx: SimContext, prefix: str) -> str:
    """Slack ids: a type letter (T team, C channel, U user, B bot, A app, D IM) + 10."""
    return prefix + "".join(ctx.world.rng.choices(ID_CHARS, k=10))


def workspace(ctx: SimContext) -> Workspace:
    """The sandbox's workspace, created with its channels and users on first use."""
    team = ctx.world.get(TEAM, "team")
    if team is None:
        team = _create(ctx)
    return Workspace(**{k: team[k] for k in Workspace.__dataclass_fields__})


def _create(ctx: SimContext) -> dict[str, Any]:
    faker = ctx.world.faker
    team_name = faker.company()
    domain = "".join(c for c in team_name.lower() if c.isalnum())[:21] or "sandbox"
    team = {"id": "team", "team_id": slack_id(ctx, "T"), "team_name": team_name,
            "domain": domain, "bot_user_id": slack_id(ctx, "U"), "bot_id": slack_id(ctx, "B"),
            "app_id": slack_id(ctx, "A"), "bot_name": "guard-sandbox-app"}
    ctx.world.put(TEAM, team)
    created = ctx.now - 86_400 * 365
    admin = _user(ctx, team["team_id"], admin=True)
    for _ in range(HUMANS - 1):
        _user(ctx, team["team_id"])
    ctx.world.put(USERS, ctx.render(
        "slack/user.yaml", id=team["bot_user_id"], team=team["team_id"],
        handle=team["bot_name"], real_name=team["bot_name"], first_name="", last_name="",
        title="", email=None, admin=False, bot=True))
    for name, purpose in DEFAULT_CHANNELS.items():
        ctx.world.put(CHANNELS, ctx.render(
            "slack/channel.yaml", id=slack_id(ctx, "C"), channel_name=name, team=team["team_id"],
            created=created, creator=admin, purpose=purpose, members=HUMANS + 1))
    return team


def _user(ctx: SimContext, team_id: str, *, admin: bool = False,
          user_id: str | None = None) -> str:
    user_id = user_id or slack_id(ctx, "U")
    ctx.world.put(USERS, _person(ctx, team_id, user_id, admin=admin))
    return user_id


def _person(ctx: SimContext, team_id: str, user_id: str, *, admin: bool = False
            ) -> dict[str, Any]:
    faker = ctx.world.faker
    first, last = faker.first_name(), faker.last_name()
    person: dict[str, Any] = ctx.render(
        "slack/user.yaml", id=user_id, team=team_id, handle=f"{first}.{last}".lower(),
        real_name=f"{first} {last}", first_name=first, last_name=last, title=faker.job(),
        email=f"{first}.{last}@example.com".lower(), admin=admin, bot=False)
    return person


def find_channel(ctx: SimContext, ref: str) -> dict[str, Any] | None:
    """A channel by id (``C0123...``) or name (``#general`` or ``general``); in an open
    world, a well-formed id or name the workspace does not hold yet is made now."""
    channel = ctx.world.get(CHANNELS, ref)
    if channel is not None:
        return channel
    name = ref.removeprefix("#")
    channel = next((c for c in ctx.world.list(CHANNELS) if c.get("name") == name), None)
    if channel is not None or openworld.strict(ctx.world, ctx.options):
        return channel
    if CHANNEL_ID.fullmatch(ref):
        faker = ctx.world.faker
        return _channel(ctx, ref, f"{faker.word()}-{faker.word()}".lower())
    if IM_ID.fullmatch(ref):  # the bot's DM with someone of the workspace
        person = ctx.world.put(USERS, _person(ctx, workspace(ctx).team_id,
                                              slack_id(ctx, "U")))
        return im(ctx, person["id"], ref, created=ctx.now - 86_400 * ctx.world.rng.randint(
            30, 700))
    upper = name.upper()
    if CHANNEL_NAME.fullmatch(name) and not (USER_ID.fullmatch(upper) or IM_ID.fullmatch(upper)):
        return _channel(ctx, slack_id(ctx, "C"), name)
    return None


def find_im(ctx: SimContext, user_id: str) -> dict[str, Any] | None:
    """The bot's open direct message with ``user_id``, if there is one."""
    return next((c for c in ctx.world.list(CHANNELS)
                 if c.get("is_im") and c.get("user") == user_id), None)


def im(ctx: SimContext, user_id: str, channel_id: str | None = None, *,
       created: int | None = None) -> dict[str, Any]:
    """A direct message between the bot and ``user_id``, kept with the channels (an IM
    object as conversations.info and conversations.open with ``return_im`` show it)."""
    team = workspace(ctx)
    created = ctx.now if created is None else created
    return ctx.world.put(CHANNELS, {
        "id": channel_id or slack_id(ctx, "D"), "created": created, "is_archived": False,
        "is_im": True, "is_org_shared": False, "context_team_id": team.team_id,
        "updated": created * 1000, "user": user_id, "last_read": "0000000000.000000",
        "latest": None, "unread_count": 0, "unread_count_display": 0, "is_open": True,
        "is_user_deleted": False, "priority": 0})


def _channel(ctx: SimContext, channel_id: str, name: str) -> dict[str, Any]:
    """A channel of the real workspace, first named by the agent: created a while ago by a
    person of the workspace, with the bot as a member (private for a ``G`` id)."""
    team = workspace(ctx)
    humans = [u for u in ctx.world.list(USERS) if not u.get("is_bot")]
    creator = humans[0]["id"] if humans else team.bot_user_id
    created = ctx.now - 86_400 * ctx.world.rng.randint(30, 700)
    channel: dict[str, Any] = ctx.render(
        "slack/channel.yaml", id=channel_id, channel_name=name, team=team.team_id,
        created=created, creator=creator, purpose="", members=ctx.world.rng.randint(3, 40))
    if channel_id.startswith("G"):  # a G id is a (legacy) private channel
        channel.update(is_channel=False, is_group=True, is_private=True)
    return ctx.world.put(CHANNELS, channel)


def find_user(ctx: SimContext, ref: str) -> dict[str, Any] | None:
    """A person by id; in an open world a well-formed user id is a person of the workspace."""
    user_id = ref.removeprefix("@")
    if not USER_ID.fullmatch(user_id):
        return ctx.world.get(USERS, user_id)
    team_id = workspace(ctx).team_id
    return openworld.referenced(ctx.world, ctx.options, USERS, user_id,
                                lambda: _person(ctx, team_id, user_id))
