"""Packs generated from public OpenAPI descriptions (Greenhouse, Apollo, Plaid, Brex),
judged by httpx through one real guard proxy; nothing reaches the real hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guard.options import Options
from guard.proxy.embedded import RunningGuard


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGuard]:
    tmp = tmp_path_factory.mktemp("openapi-packs")
    cfg = Options(listen_port=0, confdir=Path(tmp / "conf"), audit=tmp / "audit.jsonl",
                    quiet=True, seed=4, reload=False)
    g = RunningGuard(cfg).__enter__()
    yield g
    g.stop()


@pytest.fixture
def http(guard: RunningGuard) -> Iterator[httpx.Client]:
    with httpx.Client(proxy=guard.url, verify=guard.ca, timeout=30) as client:
        yield client


def test_greenhouse_has_candidates_from_the_first_visit(http: httpx.Client,
                                                        guard: RunningGuard) -> None:
    auth = ("harvest-key", "")
    first = http.get("https://harvest.greenhouse.io/v1/candidates?per_page=2", auth=auth)
    assert first.status_code == 200 and len(first.json()) == 2
    assert 'rel="next"' in first.headers["link"]
    everyone = http.get("https://harvest.greenhouse.io/v1/candidates", auth=auth).json()
    assert len(everyone) == 3 and everyone[:2] == first.json()
    one = http.get(f"https://harvest.greenhouse.io/v1/candidates/{everyone[0]['id']}",
                   auth=auth)
    assert one.json() == everyone[0]
    assert http.get("https://harvest.greenhouse.io/v1/candidates").status_code == 401
    assert guard.upstream_attempts == []


def test_apollo_sequences_keep_state_under_the_api_prefix(http: httpx.Client) -> None:
    made = http.post("https://api.apollo.io/api/v1/emailer_campaigns",
                     json={"name": "Q3 outreach"})
    assert made.status_code == 200
    campaign = made.json()["emailer_campaign"]  # Apollo wraps its objects
    assert campaign["name"] == "Q3 outreach" and campaign["id"]
    again = http.get(f"https://api.apollo.io/api/v1/emailer_campaigns/{campaign['id']}")
    assert again.status_code == 200 and again.json()["emailer_campaign"] == campaign
    bad = http.post("https://api.apollo.io/api/v1/emailer_campaigns", json={"name": 7})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"


def test_plaid_answers_in_plaid_shapes(http: httpx.Client) -> None:
    ok = http.post("https://sandbox.plaid.com/accounts/get",
                   json={"client_id": "c", "secret": "s", "access_token": "access-sandbox-x"})
    assert ok.status_code == 200 and ok.json()["accounts"][0]["account_id"]
    bad = http.post("https://sandbox.plaid.com/accounts/get",
                    json={"access_token": "access-sandbox-x", "colour": "red"})
    assert bad.status_code == 400
    assert bad.json()["error_type"] == "INVALID_REQUEST"
    assert bad.json()["error_code"] == "UNKNOWN_FIELDS"


def test_brex_vendors_are_created_listed_and_paged(http: httpx.Client,
                                                  guard: RunningGuard) -> None:
    ids = []
    for name in ("Acme", "Globex", "Initech"):
        r = http.post("https://platform.brexapis.com/v1/vendors", json={"company_name": name})
        assert r.status_code == 200 and r.json()["company_name"] == name
        ids.append(r.json()["id"])
    page = http.get("https://platform.brexapis.com/v1/vendors?limit=2").json()
    assert [v["id"] for v in page["items"]] == ids[::-1][:2] and page["next_cursor"]
    rest = http.get(f"https://platform.brexapis.com/v1/vendors?limit=2&cursor="
                    f"{page['next_cursor']}").json()
    assert [v["id"] for v in rest["items"]] == [ids[0]]
    assert http.delete(f"https://platform.brexapis.com/v1/vendors/{ids[0]}").status_code == 200
    assert http.get(f"https://platform.brexapis.com/v1/vendors/{ids[0]}").status_code == 404
    assert guard.upstream_attempts == []
