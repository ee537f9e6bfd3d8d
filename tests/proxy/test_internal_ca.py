"""guard's CA at http://guard.internal/ca.pem (and .crt) and the per-client page at
http://guard.internal/, through a real guard: plain http, before the client trusts
anything, as mitm.it serves mitmproxy's."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from cryptography import x509


def plain(g) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies = g.proxies
    return s


def test_the_ca_downloaded_over_plain_http_is_guards_and_makes_https_work(guard_proxy,
                                                                          tmp_path):
    g = guard_proxy()
    r = plain(g).get("http://guard.internal/ca.pem")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-pem-file"
    assert r.headers["X-Guard-Rule"] == "guard.internal"
    assert r.text == Path(g.ca).read_text()
    assert "PRIVATE KEY" not in r.text
    downloaded = tmp_path / "guard-ca.pem"
    downloaded.write_bytes(r.content)
    s = plain(g)
    s.verify = str(downloaded)
    assert s.get("https://api.stripe.com/v1/customers",
                 headers={"Authorization": "Bearer sk_test_1"}).status_code == 200

    der = plain(g).get("http://guard.internal/ca.crt")
    assert der.headers["Content-Type"] == "application/x-x509-ca-cert"
    pem = x509.load_pem_x509_certificate(r.content)
    assert x509.load_der_x509_certificate(der.content) == pem
    events = [json.loads(x) for x in Path(g.cfg.audit).read_text().splitlines()]
    assert {e["url"] for e in events if e.get("rule") == "guard.internal"} >= {
        "http://guard.internal/ca.pem", "http://guard.internal/ca.crt"}


def test_a_browser_gets_a_page_of_client_instructions_and_no_script(guard_proxy):
    g = guard_proxy()
    r = plain(g).get("http://guard.internal/", headers={"Accept": "text/html,*/*"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    page = r.text
    assert 'href="/ca.pem"' in page and "REQUESTS_CA_BUNDLE" in page
    assert "NODE_USE_ENV_PROXY=1" in page and "<script" not in page
    # any other client still gets the endpoint list
    listing = plain(g).get("http://guard.internal/").json()
    assert "/ca.pem" in listing["endpoints"]


def test_nothing_else_in_the_confdir_is_served(guard_proxy):
    g = guard_proxy()
    for path in ("/mitmproxy-ca.pem", "/ca.pem/../mitmproxy-ca.pem", "/ca.key",
                 "/admin-token"):
        r = plain(g).get(f"http://guard.internal{path}")
        assert r.status_code == 404 and "PRIVATE" not in r.text, path
