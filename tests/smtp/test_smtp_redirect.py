"""The documented transparent setup for SMTP, for real: a sandbox in its own network
namespace sends to ports 25, 587 and 465 of an outside address; the gateway firewall of
`guard net rules --smtp-port --smtps-port` (REDIRECT on guard's side of the link, every
other port refused) delivers each connection to the sink, which names the original
destination. Needs root, ip and iptables (skipped elsewhere, required in CI)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guard.net import iptables
from tests.providers.saas_helpers import outbox_of

OUTSIDE = "203.0.113.25"  # TEST-NET-3: never a real host
NAME = "smtp.provider.test"

CLIENT = textwrap.dedent("""
    import smtplib, ssl, sys
    ca = sys.argv[1]
    me = "sandbox.test"  # else smtplib asks DNS for our name, which no one answers here
    tls = ssl.create_default_context(cafile=ca)
    with smtplib.SMTP("%(name)s", 25, me, timeout=10) as s:
        s.starttls(context=tls); s.login("agent", "pw")
        s.sendmail("a@example.com", ["to25@example.com"], b"Subject: via 25\\r\\n\\r\\nx\\r\\n")
    with smtplib.SMTP("%(name)s", 587, me, timeout=10) as s:
        s.sendmail("a@example.com", ["to587@example.com"], b"Subject: via 587\\r\\n\\r\\nx\\r\\n")
    with smtplib.SMTP_SSL("%(name)s", 465, me, context=tls, timeout=10) as s:
        s.sendmail("a@example.com", ["to465@example.com"], b"Subject: via 465\\r\\n\\r\\nx\\r\\n")
""") % {"name": NAME}


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def sandbox_ns():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        if os.environ.get("GUARD_REQUIRE_NETNS"):
            pytest.fail("root, ip and iptables are required here")
        pytest.skip("needs root, ip and iptables")
    tag = secrets.token_hex(3)
    ns, host_if, ns_if = f"gsaas{tag}", f"gsh{tag}", f"gsn{tag}"
    net = f"10.231.{secrets.randbelow(250) + 1}"
    hosts = Path("/etc/netns") / ns
    gateways: list[iptables.Gateway] = []
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("ip", "link", "set", ns_if, "netns", ns)
        run("ip", "addr", "add", f"{net}.1/24", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        for cmd in (["ip", "addr", "add", f"{net}.2/24", "dev", ns_if],
                    ["ip", "link", "set", ns_if, "up"], ["ip", "link", "set", "lo", "up"],
                    ["ip", "route", "add", "default", "via", f"{net}.1"]):
            run("ip", "netns", "exec", ns, *cmd)
        hosts.mkdir(parents=True, exist_ok=True)
        (hosts / "hosts").write_text(f"127.0.0.1 localhost\n{OUTSIDE} {NAME}\n")

        def gateway(**ports: int | None) -> None:
            gw = iptables.Gateway(host_if, chain=f"GS{tag}", **ports)  # type: ignore[arg-type]
            gateways.append(gw)
            for cmd in iptables.setup(gw):
                run(*cmd)

        yield ns, f"{net}.1", f"{net}.2", gateway
    finally:
        for gw in gateways:
            for cmd in iptables.teardown(gw):
                subprocess.run(cmd, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        shutil.rmtree(hosts, ignore_errors=True)


@pytest.mark.netns
def test_redirected_smtp_ports_reach_the_sink_and_name_the_original_server(
        guard_proxy, sandbox_ns, tmp_path):
    ns, guard_ip, sandbox_ip, gateway = sandbox_ns
    g = guard_proxy(listen_host=guard_ip, smtp_port=0, smtps_port=0)
    gateway(port=g.port, smtp_port=g.smtp_port, smtps_port=g.smtps_port)
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(script), g.ca],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr

    records = {r["subject"]: r for r in outbox_of(g, sandbox_ip)}
    assert set(records) == {"via 25", "via 587", "via 465"}
    # STARTTLS and implicit TLS name the server by SNI; plain SMTP by the pre-REDIRECT address
    assert records["via 25"]["extra"]["server"] == f"{NAME}:25"
    assert records["via 25"]["extra"]["tls"] and records["via 25"]["extra"]["authenticated"]
    assert records["via 587"]["extra"]["server"] == f"{OUTSIDE}:587"
    assert records["via 465"]["extra"]["server"] == f"{NAME}:465"
    assert records["via 465"]["bcc"] == ["to465@example.com"]
    assert g.upstream_attempts == []


def test_net_rules_print_the_smtp_redirects_and_let_only_the_sink_ports_in(capsys):
    from guard.cli import main

    assert main(["net", "rules", "-i", "veth-sb", "--smtp-port", "2525",
                 "--smtps-port", "4650"]) == 0
    out = capsys.readouterr().out
    assert "--smtp-port 2525 --smtps-port 4650" in out
    assert ("-A GUARD-NAT -p tcp -m multiport --dports 25,587 -j REDIRECT --to-ports 2525"
            in out)
    assert "-A GUARD-NAT -p tcp -m multiport --dports 465 -j REDIRECT --to-ports 4650" in out
    accepts = [line for line in out.splitlines() if "-A GUARD-IN" in line and "ACCEPT" in line]
    assert [line.split("--dport ")[1].split()[0] for line in accepts] == ["8080", "2525", "4650"]
