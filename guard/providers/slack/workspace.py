"""A sandbox's simulated Slack workspace: team, channels, users and the app's bot.

Created on a sandbox's first Slack call (inside that request's transaction) from the
sandbox's random stream, so ``--seed`` gives the same ids every run. Channels that do not
exist answer ``channel_not_found``, as in a real workspace: the default channels are
``#general``, ``#random``, ``#engineering`` and ``#alerts``. A prepared world (a snapshot
with ``slack_channels`` / ``slack_users`` objects) can bring its own.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

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


def _user(ctx: SimContext, team_id: str, *, admin: bool = False) -> str:
    faker = ctx.world.faker
    first, last = faker.first_name(), faker.last_name()
    user_id = slack_id(ctx, "U")
    ctx.world.put(USERS, ctx.render(
        "slack/user.yaml", id=user_id, team=team_id, handle=f"{first}.{last}".lower(),
        real_name=f"{first} {last}", first_name=first, last_name=last, title=faker.job(),
        email=f"{first}.{last}@example.com".lower(), admin=admin, bot=False))
    return user_id


def find_channel(ctx: SimContext, ref: str) -> dict[str, Any] | None:
    """A channel by id (``C0123...``) or name (``#general`` or ``general``)."""
    channel = ctx.world.get(CHANNELS, ref)
    if channel is not None:
        return channel
    name = ref.removeprefix("#")
    return next((c for c in ctx.world.list(CHANNELS) if c.get("name") == name), None)


def find_user(ctx: SimContext, ref: str) -> dict[str, Any] | None:
    return ctx.world.get(USERS, ref.removeprefix("@"))
