"""``guard net rules`` and the refusals of ``guard jail`` that need no namespace."""

from __future__ import annotations

import os

from guard.cli import main


def test_net_rules_print_the_redirect_and_the_refusals_for_an_interface(capsys):
    assert main(["net", "rules", "--interface", "sbx0", "--port", "9000"]) == 0
    out = capsys.readouterr().out
    assert "guard run --mode transparent --listen-host 0.0.0.0 --listen-port 9000" in out
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    assert ("iptables -w -t nat -A GUARD-NAT -p tcp -m multiport --dports 80,443 "
            "-j REDIRECT --to-ports 9000") in lines
    assert "iptables -w -t nat -I PREROUTING 1 -i sbx0 -j GUARD-NAT" in lines
    assert "iptables -w -A GUARD-FWD -p tcp -j REJECT --reject-with tcp-reset" in lines
    assert "iptables -w -I FORWARD 1 -i sbx0 -j GUARD-FWD" in lines
    assert "ip6tables -w -I FORWARD 1 -i sbx0 -j DROP" in lines
    assert not any("udp" in line for line in lines)  # no DNS redirect unless asked


def test_net_rules_can_send_dns_to_the_stub_and_print_their_removal(capsys):
    main(["net", "rules", "-i", "sbx0", "--dns-port", "5353"])
    assert "-p udp --dport 53 -j REDIRECT --to-ports 5353" in capsys.readouterr().out
    main(["net", "rules", "-i", "sbx0", "--remove"])
    removal = capsys.readouterr().out.splitlines()
    assert "iptables -w -t nat -D PREROUTING -i sbx0 -j GUARD-NAT" in removal
    assert "iptables -w -X GUARD-FWD" in removal


def test_guard_jail_says_clearly_that_it_needs_root(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["jail", "--", "true"]) == 2
    assert "guard jail needs root" in capsys.readouterr().err


def test_guard_jail_needs_a_command(capsys):
    assert main(["jail", "--"]) == 2
    assert "no command given" in capsys.readouterr().err


def test_guard_jail_sets_the_listener_itself(capsys):
    assert main(["jail", "--mode", "regular", "--", "true"]) == 2
    assert "set by the jail" in capsys.readouterr().err
