"""The official PyGithub SDK, through guard, against the built-in GitHub pack."""

from __future__ import annotations

import pytest
import requests
from github import Auth, Github, GithubException

from tests.providers.saas_helpers import env_proxy, outbox_of


@pytest.fixture
def g(guard_proxy, monkeypatch):
    running = guard_proxy()
    env_proxy(monkeypatch, running)  # PyGithub uses requests: env proxy and CA bundle
    return running


@pytest.fixture
def gh(g):
    # PyGithub spaces requests out (0.25 s, writes 1 s) to be kind to GitHub; guard needs none.
    return Github(auth=Auth.Token("ghp_guardtest"), retry=None, seconds_between_requests=0,
                  seconds_between_writes=0)


def test_an_issue_is_created_read_listed_and_commented_on(g, gh):
    repo = gh.get_repo("octo-org/hello-world")
    assert repo.full_name == "octo-org/hello-world" and repo.default_branch == "main"
    assert repo.owner.login == "octo-org" and repo.owner.type == "Organization"

    issue = repo.create_issue(title="Login fails", body="Steps: ...", labels=["bug"],
                              assignees=["mona"])
    assert issue.number == 1 and issue.state == "open" and issue.title == "Login fails"
    assert issue.body == "Steps: ..." and [label.name for label in issue.labels] == ["bug"]
    assert [a.login for a in issue.assignees] == ["mona"] and issue.user.login
    assert issue.html_url == "https://github.com/octo-org/hello-world/issues/1"
    assert issue.created_at.year >= 2026 and issue.pull_request is None

    second = repo.create_issue(title="Typo in README")
    assert second.number == 2
    assert repo.get_issue(1).title == "Login fails"
    assert [i.number for i in repo.get_issues(state="open")] == [2, 1]
    assert [i.number for i in repo.get_issues(labels=["bug"])] == [1]

    comment = issue.create_comment("Reproduced on main.")
    assert comment.body == "Reproduced on main." and comment.user.login == issue.user.login
    assert [c.body for c in repo.get_issue(1).get_comments()] == ["Reproduced on main."]
    assert repo.get_issue(1).comments == 1

    records = outbox_of(g)
    assert [r["kind"] for r in records] == ["issue", "issue", "comment"]
    first = records[0]
    assert first["provider"] == "github" and first["to"] == ["octo-org/hello-world"]
    assert first["subject"] == "Login fails" and first["text"] == "Steps: ..."
    assert first["extra"]["labels"] == ["bug"] and first["provider_id"] == "1"
    assert records[2]["to"] == ["octo-org/hello-world#1"]
    assert records[2]["text"] == "Reproduced on main."
    assert g.upstream_attempts == []


def test_a_pull_request_takes_the_next_number_and_shows_up_among_issues(g, gh):
    repo = gh.get_repo("octo-org/app")
    repo.create_issue(title="Tracking issue")
    pull = repo.create_pull(title="Fix login", body="Closes #1", head="fix-login", base="main",
                            draft=True)
    assert pull.number == 2 and pull.state == "open" and pull.draft is True
    assert pull.head.ref == "fix-login" and pull.base.ref == "main" and not pull.merged
    assert repo.get_pull(2).title == "Fix login"
    as_issue = repo.get_issue(2)
    assert as_issue.pull_request is not None
    rec = outbox_of(g)[-1]
    assert rec["kind"] == "pull_request" and rec["subject"] == "Fix login"
    assert rec["extra"]["head"] == "fix-login" and rec["extra"]["base"] == "main"


def test_numbers_are_per_repository(gh):
    assert gh.get_repo("a/one").create_issue(title="x").number == 1
    assert gh.get_repo("a/two").create_issue(title="x").number == 1
    assert gh.get_repo("a/one").create_issue(title="y").number == 2


def test_an_empty_title_is_a_validation_failure(g, gh):
    with pytest.raises(GithubException) as info:
        gh.get_repo("octo-org/app").create_issue(title="")
    assert info.value.status == 422
    assert info.value.data["errors"] == [{"resource": "Issue", "code": "missing_field",
                                          "field": "title"}]
    assert outbox_of(g) == []


def test_a_missing_title_is_an_invalid_request(g):
    r = requests.post("https://api.github.com/repos/octo-org/app/issues",
                      json={"body": "no title"}, headers={"Authorization": "Bearer ghp_x"},
                      timeout=10)
    assert r.status_code == 422
    assert r.json()["message"] == 'Invalid request.\n\n"title" wasn\'t supplied.'


def test_a_missing_issue_is_a_404(gh):
    with pytest.raises(GithubException) as info:
        gh.get_repo("octo-org/app").get_issue(42)
    assert info.value.status == 404 and info.value.data["message"] == "Not Found"


def test_pull_request_mistakes_are_422s(gh):
    repo = gh.get_repo("octo-org/app")
    with pytest.raises(GithubException) as same:
        repo.create_pull(title="x", head="main", base="main")
    assert same.value.data["errors"][0]["message"] == "No commits between main and main"
    repo.create_pull(title="x", head="feature", base="main")
    with pytest.raises(GithubException) as dup:
        repo.create_pull(title="again", head="feature", base="main")
    assert "already exists" in dup.value.data["errors"][0]["message"]


def test_writes_without_a_token_are_401(g):
    with pytest.raises(GithubException) as info:
        anonymous = Github(retry=None, seconds_between_requests=0, seconds_between_writes=0)
        anonymous.get_repo("octo-org/app").create_issue(title="x")
    assert info.value.status == 401


def test_lists_page_with_link_headers_that_pygithub_follows(g, gh):
    repo = gh.get_repo("acme/paging")
    for n in range(7):
        repo.create_issue(title=f"issue {n}")
    gh.per_page = 3
    listed = gh.get_repo("acme/paging").get_issues(state="open")
    assert [i.number for i in listed] == [7, 6, 5, 4, 3, 2, 1]
    assert listed.totalCount == 7
    s = requests.Session()
    s.trust_env = False
    r = s.get("https://api.github.com/repos/acme/paging/issues?per_page=3&page=2",
              proxies=g.proxies, verify=g.ca)
    assert [i["number"] for i in r.json()] == [4, 3, 2]
    links = r.headers["Link"]
    assert 'page=3>; rel="next"' in links and 'page=1>; rel="first"' in links
    assert 'page=3>; rel="last"' in links and 'page=1>; rel="prev"' in links
    assert g.upstream_attempts == []


@pytest.mark.parametrize(("path", "body", "message"), [
    ("issues", {"title": "t", "labels": True},
     "For 'properties/labels', true is not an array."),
    ("issues", {"title": "t", "assignees": 1.5},
     "For 'properties/assignees', 1.5 is not an array."),
    ("issues", {"title": "t", "labels": ["bug", 7]}, "For 'items', 7 is not a string or object."),
    ("issues", {"title": True}, "For 'properties/title', true is not a string or integer."),
    ("issues", {"title": "t", "body": {"a": 1}},
     "For 'properties/body', {\"a\": 1} is not a string or null."),
    ("issues/1/comments", {"body": ["x"]}, "For 'properties/body', [\"x\"] is not a string."),
    ("pulls", {"title": "t", "head": "f", "base": "main", "draft": "yes"},
     "For 'properties/draft', \"yes\" is not a boolean."),
    ("pulls", {"title": "t", "head": 5, "base": "main"},
     "For 'properties/head', 5 is not a string."),
])
def test_a_field_of_the_wrong_json_type_is_githubs_invalid_request(g, path, body, message):
    # an agent that sends a number where GitHub takes a list gets GitHub's 422, not a guard
    # failure, and nothing is created
    def post(p, b):
        return requests.post(f"https://api.github.com/repos/o/r/{p}", json=b, proxies=g.proxies,
                             verify=g.ca, headers={"Authorization": "token ghp_x"}, timeout=10)
    assert post("issues", {"title": "first"}).status_code == 201
    r = post(path, body)
    assert r.status_code == 422, r.text
    assert r.json()["message"] == "Invalid request.\n\n" + message
    assert "documentation_url" in r.json()
    listed = requests.get("https://api.github.com/repos/o/r/issues?state=all", proxies=g.proxies,
                          verify=g.ca, timeout=10).json()
    assert [i["title"] for i in listed] == ["first"]
