"""A JSON request may carry ``"\\ud800"``: valid JSON, a string UTF-8 cannot hold. Through
the real proxy, GitHub and Slack JSON requests holding one are answered
as they would be without it (the string goes back escaped, as the client sent it), their
world, outbox, live feed (guard.internal, both the list and the SSE stream) and audit log
keep it, and the log verifies. Before, the answer failed with a 500 naming the rule."""

from __future__ import annotations

import requests

from guard.audit import reader
from guard.audit.verify import verify

LONE = '"x\\ud800y \\udfff"'  # JSON text: two lone surrogates


def test_json_requests_with_lone_surrogates_are_answered_kept_fed_and_audited(
        guard_proxy, tmp_path) -> None:
    audit = tmp_path / "lone.jsonl"
    g = guard_proxy(audit=audit)
    s = requests.Session()
    s.trust_env = False
    s.proxies, s.verify = {"https": g.url}, g.ca
    json_type = {"Content-Type": "application/json"}

    issue = s.post("https://api.github.com/repos/octo/hello/issues",
                   data=f'{{"title":{LONE},"body":"b"}}'.encode(),
                   headers={"Authorization": "token ghp_lone", **json_type})
    assert issue.status_code == 201, issue.text
    assert issue.json()["title"] == "x\ud800y \udfff"  # escaped on the wire, parsed back
    assert b"\\ud800" in issue.content

    posted = s.post("https://slack.com/api/chat.postMessage",
                    data=f'{{"channel":"C0123456789","text":{LONE}}}'.encode(),
                    headers={"Authorization": "Bearer xoxb-1-2-lone", **json_type})
    assert posted.status_code == 200 and posted.json()["ok"] is True, posted.text
    assert posted.json()["message"]["text"] == "x\ud800y \udfff"

    world = s.get("https://guard.internal/world")
    assert world.status_code == 200
    issues = world.json()["collections"]["github_issues"]
    assert [i["title"] for i in issues.values()] == ["x\ud800y \udfff"]
    outbox = s.get("https://guard.internal/outbox").json()["outbox"]
    assert [m["text"] for m in outbox if m.get("provider") == "slack"] == ["x\ud800y \udfff"]
    events = s.get("https://guard.internal/events").json()["events"]
    rules = [e.get("rule") for e in events]
    assert "github.issues.create" in rules and "slack.chat.post-message" in rules
    stream = s.get("https://guard.internal/events/stream", params={"timeout": "0"})
    assert stream.status_code == 200 and "github.issues.create" in stream.text

    g.stop()
    verdict = verify([audit])
    assert verdict.ok, verdict
    logged = [e for e in reader.events([audit]) if e.get("rule") == "github.issues.create"]
    assert logged and logged[0]["status"] == 201 and logged[0]["changes"]
