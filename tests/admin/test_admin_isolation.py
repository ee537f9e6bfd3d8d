"""The admin listener is never reachable through the proxy port or guard.internal, whatever
an agent tries: CONNECT to the admin port, absolute URLs to it (by address, by name, in
other spellings), Host header games, and guard.internal paths and ports. A rule allowing
loopback (an operator's mistake, tests/admin/rules/loopback.yaml) changes nothing: guard
refuses loopback upstreams unless a rule says allow_private."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from tests.admin.admin_helpers import new_id


def session(g, sandbox) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    proxy = sandbox.proxy_url(g.url)
    s.proxies = {"http": proxy, "https": proxy}
    s.verify = g.ca
    s.headers["Authorization"] = f"Bearer {g.admin_token}"  # even with the admin token
    return s


@pytest.fixture
def agent(admin_guard, admin):
    
    return admin.create(new_id("agent"))


def _urls(port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/v1/sandboxes", f"https://127.0.0.1:{port}/v1/sandboxes",
            f"http://localhost:{port}/v1/sandboxes", f"http://[::1]:{port}/v1/sandboxes",
            f"http://0.0.0.0:{port}/v1/sandboxes", f"http://2130706433:{port}/v1/sandboxes",
            f"http://0x7f000001:{port}/v1/sandboxes", f"http://127.1:{port}/v1/sandboxes",
            f"http://guard.internal:{port}/v1/sandboxes",
            "https://guard.internal/v1/sandboxes", "http://guard.internal/openapi.json",
            "https://guard.internal/../v1/sandboxes"]


def test_no_url_through_the_proxy_reaches_the_admin_listener(admin_guard, agent):
    port = admin_guard.guard.admin.port
    before = admin_guard.guard.admin.requests_served
    s = session(admin_guard, agent)
    for url in _urls(port):
        try:
            r = s.get(url, timeout=10)
        except requests.RequestException:
            continue  # refused outright: fine
        assert r.status_code in (403, 404, 405, 502), (url, r.status_code, r.text[:200])
        assert '"object": "list"' not in r.text and '"object":"list"' not in r.text, url
    assert admin_guard.guard.admin.requests_served == before


def test_host_header_games_do_not_reach_the_admin_listener(admin_guard, agent):
    port = admin_guard.guard.admin.port
    before = admin_guard.guard.admin.requests_served
    s = session(admin_guard, agent)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "guard.internal",
                 f"guard.internal:{port}"):
        r = s.get("https://api.stripe.com/v1/sandboxes", headers={"Host": host}, timeout=10)
        assert r.status_code in (403, 404), (host, r.status_code)
        r = s.get("http://example.com/v1/sandboxes", headers={"Host": host}, timeout=10)
        assert r.status_code in (403, 404), (host, r.status_code)
    assert admin_guard.guard.admin.requests_served == before


def test_a_raw_connect_to_the_admin_port_is_refused(admin_guard, agent):
    port = admin_guard.guard.admin.port
    before = admin_guard.guard.admin.requests_served
    import base64

    creds = base64.b64encode(f"{agent.id}:{agent.token}".encode()).decode()
    for target in (f"127.0.0.1:{port}", f"localhost:{port}", f"guard.internal:{port}"):
        with socket.create_connection(("127.0.0.1", admin_guard.port), timeout=10) as c:
            c.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
                      f"Proxy-Authorization: Basic {creds}\r\n\r\n".encode())
            head = c.recv(4096)
            if b" 200 " not in head.split(b"\r\n")[0]:
                continue  # refused at CONNECT
            # inside the tunnel: plain HTTP (the admin API speaks no TLS), then TLS
            c.sendall(f"GET /v1/sandboxes HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Authorization: Bearer {admin_guard.admin_token}\r\n\r\n".encode())
            try:
                answer = c.recv(65536)
            except (TimeoutError, OSError):
                answer = b""
            assert b'"object":"list"' not in answer
        ctx = ssl.create_default_context(cafile=admin_guard.ca)
        with socket.create_connection(("127.0.0.1", admin_guard.port), timeout=10) as c:
            c.sendall(f"CONNECT {target} HTTP/1.1\r\nProxy-Authorization: Basic {creds}"
                      "\r\n\r\n".encode())
            if b" 200 " in c.recv(4096).split(b"\r\n")[0]:
                with ctx.wrap_socket(c, server_hostname=target.rsplit(":", 1)[0]) as t:
                    t.sendall(f"GET /v1/sandboxes HTTP/1.1\r\nHost: {target}\r\n"
                              f"Authorization: Bearer {admin_guard.admin_token}\r\n\r\n"
                              .encode())
                    assert b'"object":"list"' not in t.recv(65536)
    assert admin_guard.guard.admin.requests_served == before


def test_the_admin_listener_itself_answers_its_token(admin_guard):
    """The control: the same request straight to the listener is served (so the counts
    above would have moved had anything reached it)."""
    before = admin_guard.guard.admin.requests_served
    r = requests.get(admin_guard.admin_url + "/v1/sandboxes", timeout=10,
                     headers={"Authorization": f"Bearer {admin_guard.admin_token}"})
    assert r.status_code == 200
    assert admin_guard.guard.admin.requests_served == before + 1
