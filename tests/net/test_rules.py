"""The gateway rules apply and remove cleanly (in a namespace of the test's own)."""

from __future__ import annotations

import sys

import pytest

from tests.net.lab import ROOT, Netns, require_netns, sh

pytestmark = pytest.mark.netns


def rules(ns: Netns) -> str:
    return "\n".join(ns.run(*cmd) for cmd in (
        ["iptables", "-w", "-S"], ["iptables", "-w", "-t", "nat", "-S"],
        ["ip6tables", "-w", "-S"]))


def test_net_rules_apply_and_remove_leave_the_firewall_as_it_was():
    require_netns()
    ns = Netns("rules")
    try:
        before = rules(ns)
        guard = [sys.executable, "-m", "guard", "net", "rules", "-i", "sbx0", "--port", "8080",
                 "--dns-port", "5353"]
        env = f"PYTHONPATH={ROOT}"
        sh("env", env, *guard, "--apply", ns=ns.name)
        applied = rules(ns)
        assert "-A PREROUTING -i sbx0 -j GUARD-NAT" in applied
        assert "-A GUARD-NAT -p udp -m udp --dport 53 -j REDIRECT --to-ports 5353" in applied
        assert "-A GUARD-IN -p tcp -j REJECT --reject-with tcp-reset" in applied
        assert "-A FORWARD -i sbx0 -j DROP" in applied  # ip6tables
        sh("env", env, *guard, "--remove", "--apply", ns=ns.name)
        assert rules(ns) == before
    finally:
        ns.delete()
