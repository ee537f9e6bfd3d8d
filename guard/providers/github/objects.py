"""The objects behind the GitHub pack: repositories, users, labels, branches, and GitHub's
response headers and error shape. Everything is kept in the sandbox's world, so ids stay
the same for the same name (a label ``bug`` has one id in a repository).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guard.request import Response
from guard.synth import openworld
from guard.synth.context import SimContext

API = "https://api.github.com"
REPOS = "github_repos"
USERS = "github_users"
LABELS = "github_labels"
ISSUES = "github_issues"
PULLS = "github_pulls"
VIEWER = "github_viewer"
LABEL_COLORS = {"bug": "d73a4a", "documentation": "0075ca", "duplicate": "cfd3d7",
                "enhancement": "a2eeef", "good first issue": "7057ff", "help wanted": "008672",
                "invalid": "e4e669", "question": "d876e3", "wontfix": "ffffff"}


@dataclass(frozen=True)
class Repo:
    owner: str
    name: str
    data: dict[str, Any]

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def key(self) -> str:
        """GitHub names are case-insensitive: one repository per lower-cased full name."""
        return self.full_name.lower()

    @property
    def api(self) -> str:
        return str(self.data["url"])


def stamp(ctx: SimContext) -> str:
    """GitHub's timestamps: ``2026-01-01T00:00:01Z``."""
    return ctx.world.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def docs(section: str) -> str:
    return f"https://docs.github.com/rest/{section}"


def respond(ctx: SimContext, status: int, data: Any, *, location: str | None = None,
            link: str | None = None) -> Response:
    """JSON with the headers GitHub sends (media type, request id, rate limit, paging)."""
    headers = {
        "X-GitHub-Media-Type": "github.v3; format=json",
        "X-GitHub-Request-Id": f"{ctx.ids.hex(4).upper()}:{ctx.ids.hex(5).upper()}:"
                               f"{ctx.ids.hex(7).upper()}:{ctx.ids.hex(7).upper()}",
        "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999",
        "X-RateLimit-Reset": str(ctx.now + 3600), "X-RateLimit-Used": "1",
        "X-RateLimit-Resource": "core",
    }
    if location is not None:
        headers["Location"] = location
    if link:
        headers["Link"] = link
    response = ctx.json(status, data, headers)
    response.headers[0] = ("Content-Type", "application/json; charset=utf-8")
    return response


def error(ctx: SimContext, status: int, message: str, section: str,
          errors: list[dict[str, Any]] | None = None) -> Response:
    data: dict[str, Any] = {"message": message}
    if errors is not None:
        data["errors"] = errors
    data |= {"documentation_url": docs(section), "status": str(status)}
    return respond(ctx, status, data)


def user(ctx: SimContext, login: str, kind: str = "User") -> dict[str, Any]:
    """The simple user object for ``login`` (made once per sandbox)."""
    found = ctx.world.get(USERS, login.lower())
    if found is None:
        user_id = ctx.ids.number(1_000_000, 199_999_999)
        prefix = "O_kgDO" if kind == "Organization" else "U_kgDO"
        found = ctx.render("github/user.yaml", login=login, user_id=user_id,
                           node_id=prefix + ctx.ids.base62(8), kind=kind)
        ctx.world.put(USERS, found, login.lower())
    return found


def viewer(ctx: SimContext) -> dict[str, Any]:
    """The user the sandbox's token belongs to (one per sandbox, named by Faker)."""
    me = ctx.world.get(VIEWER, "me")
    if me is None:
        login = ctx.world.faker.user_name().replace("_", "-").replace(".", "-")
        me = {"id": "me", "login": login}
        ctx.world.put(VIEWER, me)
    return user(ctx, str(me["login"]))


class RepoMissing(Exception):
    """A strict world does not hold the repository the path names (GitHub's 404)."""


def repo_for(ctx: SimContext) -> Repo:
    """The repository named by the path's ``owner`` and ``repo``: made on first use (the
    agent works on repositories it was told about), unless the world is strict
    (:class:`RepoMissing`); a seed pins repositories under ``owner/name`` lower-cased."""
    owner, name = ctx.captures["owner"], ctx.captures["repo"]
    data = ctx.world.get(REPOS, f"{owner}/{name}".lower())
    if data is None and openworld.strict(ctx.world, ctx.options):
        raise RepoMissing(f"{owner}/{name}")
    if data is None:
        kind = "User" if owner.lower() == viewer(ctx)["login"].lower() else "Organization"
        data = ctx.render("github/repo.yaml", repo_id=ctx.ids.number(100_000_000, 999_999_999),
                          node_id="R_kgDO" + ctx.ids.base62(8), repo_name=name,
                          full_name=f"{owner}/{name}", owner=user(ctx, owner, kind),
                          api=f"{API}/repos/{owner}/{name}", created=stamp(ctx))
        ctx.world.put(REPOS, data, f"{owner}/{name}".lower())
    return Repo(data["owner"]["login"], data["name"], data)


def issue_key(repo: Repo, number: int | str) -> str:
    return f"{repo.key}#{number}"


def get_issue(ctx: SimContext, repo: Repo, number: int | str) -> dict[str, Any] | None:
    return ctx.world.get(ISSUES, issue_key(repo, number))


def labels(ctx: SimContext, repo: Repo, names: list[Any]) -> list[dict[str, Any]]:
    """Label objects for names (or ``{"name": ...}`` objects), created as GitHub does when an
    issue names a label the repository does not have yet."""
    out = []
    for item in names:
        name = str(item.get("name") if isinstance(item, dict) else item)
        key = f"{repo.key}:{name.lower()}"
        label = ctx.world.get(LABELS, key)
        if label is None:
            label_id = ctx.ids.number(1_000_000_000, 9_999_999_999)
            label = {"id": label_id, "node_id": "LA_kwDO" + ctx.ids.base62(16),
                     "url": f"{repo.api}/labels/{name}", "name": name,
                     "color": LABEL_COLORS.get(name.lower(), ctx.ids.hex(6)),
                     "default": name.lower() in LABEL_COLORS, "description": None}
            ctx.world.put(LABELS, label, key)
        out.append(label)
    return out


def branch(ctx: SimContext, repo: Repo, ref: str) -> dict[str, Any]:
    """A pull request's head or base: ``{label, ref, sha, user, repo}``."""
    return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": ctx.ids.hex(40),
            "user": repo.data["owner"], "repo": repo.data}
