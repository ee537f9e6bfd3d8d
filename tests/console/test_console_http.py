"""The console over HTTP, against a real guard: who may see it, the headers every answer
carries, and what the JSON says about real flows through the proxy."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from guard.proxy.embedded import RunningGuard
from tests.console.console_helpers import admin, agent, browser_session, ready, sandbox


def test_without_a_session_pages_redirect_to_the_login_form_and_data_is_refused(
        console_guard: RunningGuard) -> None:
    with httpx.Client(base_url=console_guard.admin_url) as c:
        r = c.get("/console/")
        assert r.status_code == 303 and r.headers["location"] == "/console/login"
        assert c.get("/console").status_code == 308  # to /console/
        for path in ("/console/api/flows", "/console/api/rules", "/console/api/sandboxes",
                     "/console/mail/x/out_000001", "/console/api/stream?after=0"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert r.json()["error"]["type"] == "unauthorized"
        login = c.get("/console/login")
        assert login.status_code == 200 and b'name="token"' in login.content
        assert c.get("/console/static/console.js").status_code == 200  # no secret in it


def test_the_login_form_takes_the_token_in_its_body_and_sets_a_strict_http_only_cookie(
        console_guard: RunningGuard) -> None:
    with httpx.Client(base_url=console_guard.admin_url) as c:
        wrong = c.post("/console/login", data={"token": "not-the-token-" * 3})
        assert wrong.status_code == 401 and b'<p id="failed">' in wrong.content
        assert "set-cookie" not in wrong.headers
        r = c.post("/console/login", data={"token": console_guard.admin_token})
        assert r.status_code == 303 and r.headers["location"] == "/console/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        assert console_guard.admin_token not in cookie  # a session id, never the token
        assert c.get("/console/api/flows").status_code == 200
        # the cookie does not open the /v1 API (bearer only) nor /metrics
        assert c.get("/v1/sandboxes").status_code == 401
        assert c.get("/metrics").status_code == 401
        out = c.post("/console/logout")
        assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    with httpx.Client(base_url=console_guard.admin_url,
                      headers={"Cookie": cookie.split(";")[0]}) as again:
        assert again.get("/console/api/flows").status_code == 401  # the session is gone


def test_a_session_may_only_read_and_only_from_the_consoles_own_pages(
        console_guard: RunningGuard) -> None:
    with browser_session(console_guard) as c:
        assert c.get("/console/api/flows", headers={"Sec-Fetch-Site": "same-origin"}
                     ).status_code == 200
        for site in ("cross-site", "same-site"):
            r = c.get("/console/api/flows", headers={"Sec-Fetch-Site": site})
            assert r.status_code == 403, site
        # an Origin of another site on a form post: refused before the token is looked at
        r = c.post("/console/login", data={"token": console_guard.admin_token},
                   headers={"Origin": "http://evil.test"})
        assert r.status_code == 403
        r = c.post("/console/login", data={"token": console_guard.admin_token},
                   headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        r = c.post("/console/logout", headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        assert c.get("/console/api/flows").status_code == 200  # still logged in
        # a cookie drives no other method, whatever the route
        assert c.put("/console/api/flows").status_code == 403
        assert c.delete("/console/api/sandboxes/x").status_code == 403


def test_every_console_answer_carries_a_strict_policy_errors_included(
        console_guard: RunningGuard) -> None:
    with browser_session(console_guard) as c:
        for path in ("/console/", "/console/login", "/console/api/flows",
                     "/console/api/flows/999999999", "/console/api/sandboxes/nope",
                     "/console/nothing-here", "/console/static/nope.js"):
            r = c.get(path)
            csp = r.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
            assert "require-trusted-types-for 'script'" in csp
            assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["cache-control"] == "no-store"
        assert c.get("/console/nothing-here").status_code == 404


def test_flows_through_the_proxy_are_listed_filtered_and_shown_redacted(
        console_guard: RunningGuard, upstream_site) -> None:
    name = sandbox("flows")
    with agent(console_guard, name) as a:
        assert a.post("http://shop.test/orders", json={"item": "<script>x</script>"},
                      headers={"Authorization": "Bearer s3cret-order-token-123"}
                      ).status_code == 201
        assert a.get("http://shop.test/admin/users").status_code == 403
        assert a.get(f"http://docs.test:{upstream_site.port}/page").status_code == 200
        assert a.get("http://nowhere.test/x?y=1").status_code == 403
    with admin(console_guard) as c:
        rows = c.get("/console/api/flows", params={"sandbox": name}).json()["flows"]
        assert [(r["rule"], r["action"], r["status"]) for r in rows] == [
            ("guard.default-deny", "block", 403), ("docs.allowed", "allow", 200),
            ("shop.blocked", "block", 403), ("shop.orders.create", "simulate", 201)]
        assert not any(r["pending"] for r in rows)
        blocked = c.get("/console/api/flows", params={"sandbox": name, "action": "block"})
        assert [r["rule"] for r in blocked.json()["flows"]] == ["guard.default-deny",
                                                                 "shop.blocked"]
        shop = c.get("/console/api/flows", params={"sandbox": name, "host": "shop"})
        assert len(shop.json()["flows"]) == 2
        order = c.get(f"/console/api/flows/{rows[-1]['id']}").json()
        headers = dict((k.lower(), v) for k, v in order["request"]["headers"])
        assert "s3cret-order-token-123" not in json.dumps(order)  # redacted as in the log
        assert "authorization" in headers
        assert json.loads(order["request"]["body"]["text"]) == {"item": "<script>x</script>"}
        assert json.loads(order["response"]["body"]["text"]) == {"object": "order", "ok": True}
        allowed = c.get(f"/console/api/flows/{rows[1]['id']}").json()
        assert allowed["upstream"] is True and allowed["request"]["headers"]  # one flow
        assert c.get("/console/api/flows", params={"host": "x" * 300}).status_code == 400


def test_the_stream_sends_a_new_flow_as_it_happens(console_guard: RunningGuard) -> None:
    name = sandbox("live")
    with admin(console_guard) as c:
        version = c.get("/console/api/flows").json()["version"]
        got: list[str] = []

        def read() -> None:
            with c.stream("GET", "/console/api/stream", params={"after": version}) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                for line in r.iter_lines():
                    if line.startswith("data:") and name in line:
                        got.append(line)
                        return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.3)  # (the stream starts at `version`: a flow before it opens is sent too)
        with agent(console_guard, name) as a:
            a.get("http://shop.test/admin/x")
        reader.join(20)
        assert got, "the flow did not arrive on the stream"
        data = json.loads(got[0][5:])
        assert [f["sandbox"] for f in data["flows"] if f["sandbox"] == name] == [name]
        assert data["version"] > version  # (other tests' late flows may share the batch)


def test_worlds_are_browsable_and_reading_one_never_creates_it(
        console_guard: RunningGuard) -> None:
    name = sandbox("world")
    with agent(console_guard, name) as a:
        for i in range(3):
            a.post("https://api.stripe.com/v1/customers", data={"email": f"c{i}@x.test"},
                   headers={"Authorization": "Bearer sk_test_123"})
    with admin(console_guard) as c:
        listed = {s["sandbox"]: s for s in c.get("/console/api/sandboxes").json()["sandboxes"]}
        assert listed[name]["objects"] >= 3
        world = c.get(f"/console/api/sandboxes/{name}").json()
        assert world["counts"]["stripe.customers"] == 3
        page = c.get(f"/console/api/sandboxes/{name}/collections/stripe.customers",
                     params={"limit": 2}).json()
        assert [o["email"] for o in page["objects"]] == ["c0@x.test", "c1@x.test"]
        rest = c.get(f"/console/api/sandboxes/{name}/collections/stripe.customers",
                     params={"after": page["next"]}).json()
        assert [o["email"] for o in rest["objects"]] == ["c2@x.test"] and rest["next"] is None
        assert c.get("/console/api/sandboxes/never-seen").status_code == 404
        assert c.get("/console/api/sandboxes/never-seen/outbox").status_code == 404
    assert not console_guard.worlds.exists("never-seen")


def test_rules_show_their_hits_and_the_requests_no_rule_matched(
        console_guard: RunningGuard) -> None:
    name = sandbox("rules")
    with agent(console_guard, name) as a:
        for _ in range(2):
            a.get("http://unknown-host.test/some/path?token=1")
    with admin(console_guard) as c:
        data = c.get("/console/api/rules").json()
    by_id = {r["id"]: r for r in data["rules"]}
    assert "console-rules.yaml:" in by_id["shop.orders.create"]["source"]
    # the Stripe pack serves Stripe's three hosts (meter-events.stripe.com answers only the
    # v2 meter event stream, files.stripe.com uploads and PDFs; the handler says so), and
    # the console shows the pack's hosts
    assert by_id["stripe.customers.create"]["hosts"] == [
        "api.stripe.com", "meter-events.stripe.com", "files.stripe.com"]
    group = [u for u in data["unmatched"] if u["host"] == "unknown-host.test"]
    assert group and group[0]["count"] == 2 and group[0]["path"] == "/some/path"
    assert name in group[0]["sandboxes"]
    assert any(o["id"] == "guard.default-deny" and o["hits"] >= 2 for o in data["other"])


@pytest.mark.parametrize("path", ["/console/api/flows?limit=abc", "/console/api/flows?before=-1",
                                  "/console/api/stream", "/console/api/stream?after=x"])
def test_bad_query_values_are_a_clear_400(console_guard: RunningGuard, path: str) -> None:
    with admin(console_guard) as c:
        r = c.get(path)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request"


def test_probes_are_public_and_say_only_ready_or_not_without_the_token(
        console_guard: RunningGuard) -> None:
    r = httpx.get(console_guard.admin_url + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = ready(console_guard)
    assert r.status_code == 200
    assert r.json() == {"ready": True, "checks": {"listening": "ok", "rules": "ok",
                                                  "audit": "ok"}}
    assert httpx.head(console_guard.admin_url + "/readyz").status_code == 200
    # the probes are exact paths: nothing else is public
    assert httpx.get(console_guard.admin_url + "/readyz/x").status_code == 401
    assert httpx.get(console_guard.admin_url + "/healthz?x=1").status_code == 200
