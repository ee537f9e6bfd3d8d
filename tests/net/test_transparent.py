"""guard as a transparent gateway, proven in namespaces: the agent has no proxy settings,
its TCP 80/443 ends at guard, and the fake internet sees only what an allow rule let out."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.net.conftest import INTERNET, PROBE, Lab, wait_for_udp

pytestmark = pytest.mark.netns


def test_without_the_gateway_firewall_raw_tcp_and_udp_would_arrive(lab: Lab):
    # the control measurement taken before guard started: the path is really open
    assert lab.control["tcp"] == "connected"
    assert lab.control["connections"] == 1 and lab.control["datagrams"] == 3


def test_the_stripe_sdk_is_simulated_and_nothing_reaches_the_internet(lab: Lab, internet):
    before = internet.total()
    out = lab.in_agent(f"""
        import json, stripe
        stripe.api_key = "sk_test_transparent"
        stripe.ca_bundle_path = "{lab.guard_ca}"
        created = stripe.Customer.create(email="jenny@example.com", metadata={{"plan": "pro"}})
        fetched = stripe.Customer.retrieve(created.id)
        print(json.dumps({{"id": created.id, "email": fetched.email,
                          "plan": fetched.metadata["plan"], "livemode": created.livemode}}))
    """)
    assert out["id"].startswith("cus_") and out["email"] == "jenny@example.com"
    assert out["plan"] == "pro" and out["livemode"] is False
    assert internet.total() == before


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_http2_clients_are_decided_on_the_authority_too(lab: Lab, internet):
    # curl offers h2 first (httpx offers http/1.1 first, and guard follows the client)
    before = list(internet.requests)
    out = lab.in_agent(f"""
        import json, subprocess
        def curl(*args):
            done = subprocess.run(["curl", "-s", "--http2", "--cacert", "{lab.guard_ca}",
                                   "-w", "\\n%{{http_version}}", *args],
                                  capture_output=True, text=True, check=True)
            body, version = done.stdout.rsplit("\\n", 1)
            return [version, json.loads(body)]
        print(json.dumps({{
            "sim": curl("https://api.stripe.com/v1/customers", "-u", "sk_test_h2:",
                        "-d", "email=h2@example.com"),
            "allowed": curl("https://allowed.test/over-h2")}}))
    """)
    assert out["sim"][0] == "2" and out["sim"][1]["object"] == "customer"
    assert out["allowed"] == ["2", {"internet": True, "host": "allowed.test",
                                    "path": "/over-h2"}]
    assert internet.requests[len(before):] == [(443, "allowed.test", "/over-h2")]


def test_an_unknown_host_is_blocked_by_the_default_rule(lab: Lab, internet):
    before = internet.total()
    out = lab.in_agent(f"""
        import json, requests
        r = requests.get("https://unknown.test/anything", verify="{lab.guard_ca}")
        h = requests.get("http://unknown.test/plain")
        print(json.dumps({{"https": [r.status_code, r.headers.get("X-Guard-Rule")],
                          "http": [h.status_code, h.headers.get("X-Guard-Rule")]}}))
    """)
    assert out == {"https": [403, "guard.default-deny"], "http": [403, "guard.default-deny"]}
    assert internet.total() == before


def test_an_allowed_host_is_reached_at_the_address_guard_resolves(lab: Lab, internet):
    # the agent's hosts file points allowed.test at an address where nothing listens;
    # guard connects to what the name resolves to in its own namespace
    out = lab.in_agent(f"""
        import json, requests
        s = requests.get("https://allowed.test/hello", verify="{lab.guard_ca}")
        p = requests.get("http://allowed.test/plain")
        print(json.dumps({{"https": s.json(), "http": p.json(),
                          "rule": s.headers.get("X-Guard-Rule")}}))
    """)
    assert out["https"] == {"internet": True, "host": "allowed.test", "path": "/hello"}
    assert out["http"] == {"internet": True, "host": "allowed.test", "path": "/plain"}
    assert out["rule"] == "lab.allowed"
    assert (443, "allowed.test", "/hello") in internet.requests
    assert (80, "allowed.test", "/plain") in internet.requests


def test_allowed_names_that_resolve_to_private_or_metadata_addresses_are_refused(lab, internet):
    before = internet.total()
    out = lab.in_agent(f"""
        import json, requests
        out = {{}}
        for name in ("private.test", "metadata.test"):
            r = requests.get(f"https://{{name}}/latest/meta-data/", verify="{lab.guard_ca}")
            out[name] = [r.status_code, r.json()["error"]["rule"], r.json()["error"]["reason"]]
        print(json.dumps(out))
    """)
    assert out["private.test"][:2] == [403, "guard.egress-refused"]
    assert f"{INTERNET} (private)" in out["private.test"][2]
    assert out["metadata.test"][:2] == [403, "guard.egress-refused"]
    assert "169.254.169.254 (cloud metadata)" in out["metadata.test"][2]
    assert internet.total() == before


def test_a_host_header_that_disagrees_with_the_sni_is_refused(lab: Lab, internet):
    before = internet.total()
    out = lab.in_agent(f"""
        import json, requests
        r = requests.get("https://allowed.test/", headers={{"Host": "unknown.test"}},
                         verify="{lab.guard_ca}")
        print(json.dumps([r.status_code, r.json()["error"]["rule"]]))
    """)
    assert out == [403, "guard.sni-mismatch"]
    assert internet.total() == before


def test_a_request_without_host_or_sni_is_not_decided_on_the_address(lab: Lab, internet):
    before = internet.total()
    out = lab.in_agent(f"""
        import json, socket
        with socket.create_connection(("{INTERNET}", 80), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            head = s.recv(65536).decode()
        print(json.dumps(head))
    """)
    assert out.split("\r\n")[0].endswith("403 Forbidden") and "guard.no-host" in out
    assert internet.total() == before


def test_a_request_without_host_is_decided_on_the_tls_sni(lab: Lab, internet):
    before = internet.total()
    out = lab.in_agent(f"""
        import json, socket, ssl
        ctx = ssl.create_default_context(cafile="{lab.guard_ca}")
        with socket.create_connection(("{INTERNET}", 443), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="api.stripe.com") as s:
                s.sendall(b"GET /v1/customers/cus_none HTTP/1.0\\r\\n"
                          b"Authorization: Bearer sk_test_sni\\r\\n\\r\\n")
                head = s.recv(65536).decode()
        print(json.dumps(head))
    """)
    rule = [line for line in out.split("\r\n") if line.startswith("X-Guard-Rule:")]
    assert rule and rule[0].split(": ")[1].startswith("stripe."), out
    assert internet.total() == before


def test_raw_tcp_and_udp_never_arrive(lab: Lab, internet):
    before = internet.total()
    out = lab.in_agent(PROBE)
    assert out["tcp"] == "ConnectionRefusedError"  # the gateway answers with a reset
    # a non-TLS, non-HTTP stream to port 443 is cut by guard, not passed through
    raw = lab.in_agent(f"""
        import json, socket
        with socket.create_connection(("{INTERNET}", 443), timeout=10) as s:
            s.sendall(b"\\x00\\x01 binary protocol, neither TLS nor HTTP\\r\\n")
            s.settimeout(10)
            try:
                data = s.recv(1024)
            except (ConnectionResetError, TimeoutError) as e:
                data = type(e).__name__.encode()
        print(json.dumps(data.decode("latin-1")))
    """)
    assert "binary protocol" not in raw
    wait_for_udp(internet, 1)  # would return at once if a datagram had leaked; it waits
    assert internet.total() == before


def test_names_resolve_through_guards_dns_stub_even_with_an_outside_resolver(lab, internet):
    before = internet.total()
    out = lab.in_agent("""
        import json, socket
        print(json.dumps(socket.gethostbyname("not-in-any-hosts-file.example")))
    """)
    assert out == "10.231.1.1"  # guard's address on the sandbox side
    assert internet.total() == before


def test_every_decision_is_in_the_audit_log_with_the_name_not_the_address(lab: Lab):
    # its own traffic (under xdist the lab's other tests may run in another worker's lab):
    # a simulated, a default-denied, an allowed request, and one without host or SNI
    lab.in_agent(f"""
        import json, socket, requests
        requests.get("https://api.stripe.com/v1/customers", auth=("sk_test_log", ""),
                     verify="{lab.guard_ca}", timeout=30)
        requests.get("https://unknown.test/logged", verify="{lab.guard_ca}", timeout=30)
        requests.get("https://allowed.test/logged", verify="{lab.guard_ca}", timeout=30)
        with socket.create_connection(("{INTERNET}", 80), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            s.recv(65536)
        print(json.dumps("sent"))
    """)
    events = [json.loads(line) for line in (lab.tmp / "audit.jsonl").read_text().splitlines()]
    hosts = {e["host"] for e in events}
    assert {"api.stripe.com", "unknown.test", "allowed.test"} <= hosts
    named = [e for e in events if e["rule"] not in ("guard.no-host", "guard.raw-tcp")]
    assert named and not any(e["host"].startswith("10.231.") for e in named)
    no_host = [e for e in events if e["rule"] == "guard.no-host"]
    assert no_host and no_host[0]["action"] == "block"
