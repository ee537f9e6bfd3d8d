"""The three-namespace lab: agent -> guard (transparent gateway) -> fake internet.

    agent  10.231.1.2/24 ── sbx 10.231.1.1/24  [guard]  wan 10.231.2.1/24 ── 10.231.2.10/24  internet
           default via .1.1                    forwarding on                   default via .2.1

guard's namespace forwards packets (as a careless router would), so the only thing
between the agent and the fake internet is the firewall that guard's container
entrypoint installs; the lab measures that the path is open before it starts guard.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.net.lab import ROOT, FakeInternet, LabCA, Netns, clean_env, link, require_netns

INTERNET = "10.231.2.10"
INTERNET_DNS = "10.231.2.53"
NOWHERE = "10.231.2.99"  # what the agent's names point at: nothing listens there
NAMES = ["api.stripe.com", "allowed.test", "private.test", "unknown.test", "metadata.test"]

RULES = textwrap.dedent("""
    pack: lab
    rules:
      - id: lab.allowed
        hosts: [allowed.test]
        action: allow
        allow_private: true     # the fake internet lives in 10.231.0.0/16
      - id: lab.private
        hosts: [private.test, metadata.test]
        action: allow           # allowed, but they resolve to internal addresses
""")


@dataclass
class Lab:
    agent: Netns
    guard: Netns
    internet: FakeInternet
    tmp: Path
    guard_ca: Path = Path()
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    control: dict[str, Any] = field(default_factory=dict)

    def in_agent(self, script: str, timeout: float = 120) -> Any:
        """Run a Python script in the agent namespace (no proxy settings); its last
        stdout line is JSON."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.agent.name, sys.executable, "-c",
             textwrap.dedent(script)],
            capture_output=True, text=True, timeout=timeout, env=clean_env(), cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


PROBE = f"""
    import json, socket
    out = {{}}
    try:
        socket.create_connection(("{INTERNET}", 5432), timeout=3).close()
        out["tcp"] = "connected"
    except OSError as e:
        out["tcp"] = type(e).__name__
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for port in (53, 443):
            u.sendto(b"probe", ("{INTERNET}", port))
        u.sendto(b"probe", ("{INTERNET_DNS}", 53))
    print(json.dumps(out))
"""


def wait_for_udp(internet: FakeInternet, expected: int) -> None:
    deadline = time.time() + 10
    while sum(internet.datagrams.values()) < expected and time.time() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_netns()
    tmp = tmp_path_factory.mktemp("lab")
    spaces: list[Netns] = []
    internet: FakeInternet | None = None
    proc: subprocess.Popen[str] | None = None
    try:
        agent, guard, inet = (Netns(role) for role in ("agent", "guard", "inet"))
        spaces += [agent, guard, inet]
        link(agent, "eth0", "10.231.1.2/24", guard, "sbx", "10.231.1.1/24")
        link(guard, "wan", "10.231.2.1/24", inet, "eth0", f"{INTERNET}/24")
        inet.run("ip", "addr", "add", f"{INTERNET_DNS}/24", "dev", "eth0")
        agent.run("ip", "route", "add", "default", "via", "10.231.1.1")
        inet.run("ip", "route", "add", "default", "via", "10.231.2.1")
        guard.run("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
        agent.hosts({name: NOWHERE for name in NAMES})
        agent.resolver(INTERNET_DNS)  # a hard-coded outside resolver, as agents often have
        guard.hosts({"api.stripe.com": INTERNET, "allowed.test": INTERNET,
                     "unknown.test": INTERNET, "private.test": INTERNET,
                     "metadata.test": "169.254.169.254"})

        ca = LabCA(tmp)
        internet = FakeInternet(inet)
        internet.http(INTERNET, 443, ca.server_context(NAMES))
        internet.http(INTERNET, 80)
        internet.tcp(INTERNET, 5432)
        for address, port in ((INTERNET, 53), (INTERNET, 443), (INTERNET_DNS, 53)):
            internet.udp(address, port)
        lab = Lab(agent, guard, internet, tmp)

        # Control: with no guard firewall, raw TCP and UDP from the agent do arrive.
        lab.control = lab.in_agent(PROBE)
        wait_for_udp(internet, 3)
        lab.control["datagrams"] = sum(internet.datagrams.values())
        lab.control["connections"] = sum(internet.connections.values())

        rules = tmp / "lab.yaml"
        rules.write_text(RULES)
        confdir = tmp / "confdir"
        env = clean_env()
        env.update(PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
                   GUARD_GATEWAY="1", GUARD_SANDBOX_SUBNET="10.231.1.0/24",
                   GUARD_CONFDIR=str(confdir))
        proc = subprocess.Popen(
            ["ip", "netns", "exec", guard.name, "sh", str(ROOT / "docker" / "entrypoint.sh"),
             "run", "--rules", str(rules), "--upstream-ca", str(ca.path),
             "--audit", str(tmp / "audit.jsonl")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
        lab.proc = proc
        while True:
            line = proc.stdout.readline() if proc.stdout else ""
            lab.output.append(line)
            if not line or "stripe.ca_bundle_path" in line:
                break
        assert proc.poll() is None, "".join(lab.output)
        lab.guard_ca = confdir / "mitmproxy-ca-cert.pem"
        yield lab
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if internet is not None:
            internet.close()
        for ns in spaces:
            ns.delete()


@pytest.fixture
def internet(lab: Lab) -> FakeInternet:
    return lab.internet

