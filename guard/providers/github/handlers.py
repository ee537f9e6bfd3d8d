"""GitHub REST (api.github.com): get a repository; create, get and list issues; comment on
issues; create and get pull requests. Objects carry the fields PyGithub reads.

Any repository a sandbox names exists (created on first use, owned by the URL's owner),
since agents work on repositories they were told about, unless the world is strict
(:mod:`guard.synth.openworld`): then only the repositories it holds exist and the others
are GitHub's 404 ``Not Found``; issues and pull requests are the agent's own, so an unknown
number is a 404 either way. Issue and pull request numbers
share one counter per repository (``World.next``), as on GitHub. Writes need a token
(401 ``Requires authentication`` otherwise); mistakes answer GitHub's 422 shapes. Every
issue, pull request and comment is an outbox record.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from guard import outbox
from guard.providers.github.objects import (
    ISSUES,
    PULLS,
    Repo,
    RepoMissing,
    branch,
    error,
    get_issue,
    issue_key,
    labels,
    repo_for,
    respond,
    stamp,
    user,
    viewer,
)
from guard.request import Response
from guard.synth.context import SimContext
from guard.synth.handlers import Handler, handler

COMMENTS = "github_comments"


def github(fn: Callable[[SimContext], Response]) -> Handler:
    """A handler whose repository may be missing (a strict world): GitHub's 404."""

    @functools.wraps(fn)
    def run(ctx: SimContext) -> Response:
        try:
            return fn(ctx)
        except RepoMissing:
            return error(ctx, 404, "Not Found", "repos/repos#get-a-repository")

    return handler(run)


def _authorized(ctx: SimContext) -> bool:
    return bool(ctx.request.header("authorization"))


def _unauthorized(ctx: SimContext, section: str) -> Response:
    return error(ctx, 401, "Requires authentication", section)


def _missing_field(ctx: SimContext, resource: str, field: str, section: str) -> Response:
    return error(ctx, 422, "Validation Failed", section,
                 errors=[{"resource": resource, "code": "missing_field", "field": field}])


# The JSON types GitHub's request schemas give the fields guard reads; a value of another
# type is GitHub's 422 "Invalid request. For 'properties/<field>', <value> is not <type>."
_STRING, _INTEGER, _ARRAY, _BOOLEAN, _NULL = "a string", "an integer", "an array", \
    "a boolean", "null"
ISSUE_FIELDS = {"title": (_STRING, _INTEGER), "body": (_STRING, _NULL),
                "assignee": (_STRING, _NULL), "assignees": (_ARRAY,),
                "labels": (_ARRAY,), "milestone": (_STRING, _INTEGER, _NULL)}
COMMENT_FIELDS: dict[str, tuple[str, ...]] = {"body": (_STRING,)}
PULL_FIELDS: dict[str, tuple[str, ...]] = {
    "title": (_STRING,), "body": (_STRING,), "head": (_STRING,), "base": (_STRING,),
    "draft": (_BOOLEAN,), "issue": (_INTEGER,)}


def _json_type(value: Any) -> str:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _BOOLEAN
    if isinstance(value, int):
        return _INTEGER
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return _STRING
    return _ARRAY if isinstance(value, list) else "an object"


def _wrong_type(ctx: SimContext, body: dict[str, Any], fields: dict[str, tuple[str, ...]],
                section: str) -> Response | None:
    """GitHub's 422 for the first field (or list item) of the wrong JSON type, else None."""
    for field, allowed in fields.items():
        if field not in body:
            continue
        value = body[field]
        if _json_type(value) not in allowed:
            return _invalid(ctx, f"properties/{field}", value, allowed, section)
        if field in ("labels", "assignees"):
            items = (_STRING, "an object") if field == "labels" else (_STRING,)
            for item in value:
                if _json_type(item) not in items:
                    return _invalid(ctx, "items", item, items, section)
    return None


def _invalid(ctx: SimContext, where: str, value: Any, allowed: tuple[str, ...],
             section: str) -> Response:
    shown = json.dumps(value, ensure_ascii=False)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    kinds = " or ".join(a.removeprefix("a ").removeprefix("an ") for a in allowed)
    article = "an" if kinds[0] in "aeiou" else "a"
    what = "null" if kinds == "null" else f"{article} {kinds}"
    return error(ctx, 422, f"Invalid request.\n\nFor '{where}', {shown} is not {what}.", section)


@github
def get_repo(ctx: SimContext) -> Response:
    return respond(ctx, 200, repo_for(ctx).data)


@github
def create_issue(ctx: SimContext) -> Response:
    section = "issues/issues#create-an-issue"
    if not _authorized(ctx):
        return _unauthorized(ctx, section)
    body = ctx.request.json
    if not isinstance(body, dict) or "title" not in body:
        return error(ctx, 422, 'Invalid request.\n\n"title" wasn\'t supplied.', section)
    if body["title"] in (None, ""):
        return _missing_field(ctx, "Issue", "title", section)
    if (wrong := _wrong_type(ctx, body, ISSUE_FIELDS, section)) is not None:
        return wrong
    if body.get("milestone") is not None:
        return error(ctx, 422, "Validation Failed", section, errors=[
            {"value": body["milestone"], "resource": "Issue", "field": "milestone",
             "code": "invalid"}])
    repo = repo_for(ctx)
    issue = _new_issue(ctx, repo, str(body["title"]), body.get("body"),
                       labels(ctx, repo, body.get("labels") or []),
                       [user(ctx, a) for a in _assignees(body)], pull=False)
    outbox.record(ctx, outbox.Message(
        "github", kind="issue", sender=issue["user"]["login"], to=[repo.full_name],
        subject=issue["title"], text=issue["body"], provider_id=str(issue["number"]),
        extra={"repository": repo.full_name, "number": issue["number"],
               "html_url": issue["html_url"],
               "labels": [label["name"] for label in issue["labels"]]}))
    return respond(ctx, 201, issue, location=issue["url"])


def _assignees(body: dict[str, Any]) -> list[str]:
    names = list(body.get("assignees") or [])
    if body.get("assignee") and body["assignee"] not in names:
        names.insert(0, body["assignee"])
    return [str(n) for n in names]


def _new_issue(ctx: SimContext, repo: Repo, title: str, text: Any, label_objects: list[Any],
               assignees: list[dict[str, Any]], *, pull: bool) -> dict[str, Any]:
    number = ctx.world.next(f"github:{repo.key}:number")
    issue: dict[str, Any] = ctx.render("github/issue.yaml", api=repo.api, full_name=repo.full_name,
                       number=number, issue_id=ctx.ids.number(1_000_000_000, 3_999_999_999),
                       node_id="I_kwDO" + ctx.ids.base62(16), title=title,
                       body=None if text is None else str(text), user=viewer(ctx),
                       labels=label_objects, assignees=assignees, created=stamp(ctx),
                       pull=pull)
    if pull:
        html = issue["html_url"]
        issue["pull_request"] = {"url": f"{repo.api}/pulls/{number}", "html_url": html,
                                 "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
                                 "merged_at": None}
    ctx.world.put(ISSUES, issue, issue_key(repo, number))
    return issue


@github
def fetch_issue(ctx: SimContext) -> Response:
    repo = repo_for(ctx)
    issue = get_issue(ctx, repo, ctx.captures["number"])
    if issue is None:
        return error(ctx, 404, "Not Found", "issues/issues#get-an-issue")
    return respond(ctx, 200, issue)


@github
def list_issues(ctx: SimContext) -> Response:
    """Newest first; ``state`` (open, closed, all), ``labels``, ``per_page`` and ``page``."""
    repo = repo_for(ctx)
    state = ctx.request.query_first("state") or "open"
    wanted = {x for x in (ctx.request.query_first("labels") or "").split(",") if x}
    issues = [i for i in ctx.world.list(ISSUES) if i["repository_url"] == repo.api
              and (state == "all" or i["state"] == state)
              and wanted <= {label["name"] for label in i["labels"]}]
    issues.sort(key=lambda i: i["number"], reverse=True)
    return _paged(ctx, issues)


def _paged(ctx: SimContext, items: list[dict[str, Any]]) -> Response:
    """One page of ``items`` (``per_page``, default 30, at most 100; ``page`` from 1) with
    GitHub's ``Link`` header (rel next, last, first, prev), which PyGithub follows."""
    try:
        per_page = max(1, min(100, int(ctx.request.query_first("per_page") or 30)))
        page = max(1, int(ctx.request.query_first("page") or 1))
    except ValueError:
        per_page, page = 30, 1
    last = max(1, -(-len(items) // per_page))
    query = [(k, v) for k, v in ctx.request.query if k not in ("page", "per_page")]
    base = f"https://{ctx.request.host}{ctx.request.path}"

    def url(n: int) -> str:
        return f"{base}?{urlencode([*query, ('per_page', str(per_page)), ('page', str(n))])}"

    rels = []
    if page < last:
        rels += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        rels += [f'<{url(1)}>; rel="first"', f'<{url(min(page - 1, last))}>; rel="prev"']
    return respond(ctx, 200, items[(page - 1) * per_page:page * per_page],
                   link=", ".join(rels) or None)


@github
def create_comment(ctx: SimContext) -> Response:
    section = "issues/comments#create-an-issue-comment"
    if not _authorized(ctx):
        return _unauthorized(ctx, section)
    repo = repo_for(ctx)
    issue = get_issue(ctx, repo, ctx.captures["number"])
    if issue is None:
        return error(ctx, 404, "Not Found", section)
    body = ctx.request.json
    if not isinstance(body, dict) or "body" not in body:
        return error(ctx, 422, 'Invalid request.\n\n"body" wasn\'t supplied.', section)
    if not body["body"]:
        return _missing_field(ctx, "IssueComment", "body", section)
    if (wrong := _wrong_type(ctx, body, COMMENT_FIELDS, section)) is not None:
        return wrong
    comment_id = ctx.ids.number(1_000_000_000, 3_999_999_999)
    comment = ctx.render("github/comment.yaml", api=repo.api, full_name=repo.full_name,
                         number=issue["number"], comment_id=comment_id,
                         node_id="IC_kwDO" + ctx.ids.base62(16), user=viewer(ctx),
                         created=stamp(ctx), body=str(body["body"]))
    ctx.world.put(COMMENTS, comment, str(comment_id))
    issue["comments"] += 1
    issue["updated_at"] = comment["created_at"]
    ctx.world.put(ISSUES, issue, issue_key(repo, issue["number"]))
    outbox.record(ctx, outbox.Message(
        "github", kind="comment", sender=comment["user"]["login"],
        to=[f"{repo.full_name}#{issue['number']}"], subject=issue["title"],
        text=comment["body"], provider_id=str(comment_id),
        extra={"repository": repo.full_name, "number": issue["number"],
               "html_url": comment["html_url"]}))
    return respond(ctx, 201, comment, location=comment["url"])


@github
def list_comments(ctx: SimContext) -> Response:
    repo = repo_for(ctx)
    issue = get_issue(ctx, repo, ctx.captures["number"])
    if issue is None:
        return error(ctx, 404, "Not Found", "issues/comments#list-issue-comments")
    return _paged(ctx, [c for c in ctx.world.list(COMMENTS) if c["issue_url"] == issue["url"]])


@github
def create_pull(ctx: SimContext) -> Response:
    section = "pulls/pulls#create-a-pull-request"
    if not _authorized(ctx):
        return _unauthorized(ctx, section)
    body = ctx.request.json
    if not isinstance(body, dict):
        return error(ctx, 400, "Problems parsing JSON", section)
    if (wrong := _wrong_type(ctx, body, PULL_FIELDS, section)) is not None:
        return wrong
    for field in ("head", "base"):
        if not body.get(field):
            return _missing_field(ctx, "PullRequest", field, section)
    if not body.get("title") and not body.get("issue"):
        return _missing_field(ctx, "PullRequest", "title", section)
    repo = repo_for(ctx)
    head_ref, base_ref = str(body["head"]).split(":")[-1], str(body["base"])
    if head_ref == base_ref:
        return error(ctx, 422, "Validation Failed", section, errors=[
            {"resource": "PullRequest", "code": "custom",
             "message": f"No commits between {base_ref} and {head_ref}"}])
    open_heads = {(p["head"]["ref"], p["base"]["ref"]) for p in ctx.world.list(PULLS)
                  if p["issue_url"].startswith(f"{repo.api}/") and p["state"] == "open"}
    if (head_ref, base_ref) in open_heads:
        return error(ctx, 422, "Validation Failed", section, errors=[
            {"resource": "PullRequest", "code": "custom", "message": "A pull request already "
             f"exists for {repo.owner}:{head_ref}."}])
    issue = _new_issue(ctx, repo, str(body.get("title")), body.get("body"), [], [], pull=True)
    pull = ctx.render("github/pull.yaml", api=repo.api, full_name=repo.full_name,
                      number=issue["number"], pull_id=ctx.ids.number(1_000_000_000,
                                                                     3_999_999_999),
                      node_id="PR_kwDO" + ctx.ids.base62(16), title=issue["title"],
                      body=issue["body"], user=issue["user"], created=issue["created_at"],
                      head=branch(ctx, repo, head_ref), base=branch(ctx, repo, base_ref),
                      draft=bool(body.get("draft")))
    ctx.world.put(PULLS, pull, issue_key(repo, issue["number"]))
    outbox.record(ctx, outbox.Message(
        "github", kind="pull_request", sender=pull["user"]["login"], to=[repo.full_name],
        subject=pull["title"], text=pull["body"], provider_id=str(pull["number"]),
        extra={"repository": repo.full_name, "number": pull["number"], "head": head_ref,
               "base": base_ref, "html_url": pull["html_url"], "draft": pull["draft"]}))
    return respond(ctx, 201, pull, location=pull["url"])


@github
def fetch_pull(ctx: SimContext) -> Response:
    repo = repo_for(ctx)
    pull = ctx.world.get(PULLS, issue_key(repo, ctx.captures["number"]))
    if pull is None:
        return error(ctx, 404, "Not Found", "pulls/pulls#get-a-pull-request")
    return respond(ctx, 200, pull)
