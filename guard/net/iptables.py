"""The firewall of a transparent guard gateway, as iptables commands.

The sandbox reaches the outside only through the interface ``interface`` of the
host (or namespace, or container) where guard runs:

- TCP to ports 80 and 443 is redirected (``nat PREROUTING``, ``REDIRECT``) to
  guard's transparent listener; mitmproxy reads the original destination with
  ``SO_ORIGINAL_DST``, which works because the redirect happens where guard
  listens. Optionally UDP port 53 goes to guard's DNS stub, and SMTP (TCP 25 and
  587, and 465) to guard's SMTP sink (``--smtp-port``, ``--smtps-port``).
- Everything else from the sandbox is refused: other TCP with a reset, UDP and
  the rest dropped, both to this host (``INPUT``) and through it (``FORWARD``),
  and all IPv6 is dropped. No forwarding is needed at all: guard itself makes
  the outbound connections. Even guard's own ports are open only to connections
  that the redirect sent there (``conntrack --ctstate DNAT``): a sandbox that dials
  guard's port directly, or that port on another address of the host, is refused.

All rules live in chains of their own (``<chain>-NAT``, ``-IN``, ``-FWD``) jumped
to from the top of the built-in chains, so :func:`teardown` removes exactly them.

>>> print(shell(setup(Gateway("veth0", 8080))[:2]))
iptables -w -t nat -N GUARD-NAT
iptables -w -t nat -A GUARD-NAT -p tcp -m multiport --dports 80,443 -j REDIRECT --to-ports 8080
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Command = list[str]
REDIRECTED = ("-m", "conntrack", "--ctstate", "DNAT")  # arrived through the nat redirect


@dataclass(frozen=True)
class Gateway:
    """Where sandbox traffic arrives and where guard listens for it."""

    interface: str
    port: int = 8080
    dns_port: int | None = None
    chain: str = "GUARD"
    ports: tuple[int, ...] = (80, 443)
    smtp_port: int | None = None  # the SMTP sink (STARTTLS): gets TCP 25 and 587
    smtps_port: int | None = None  # the SMTP sink with implicit TLS: gets TCP 465

    @property
    def smtp(self) -> list[tuple[str, int]]:
        """(sandbox destination ports, sink port) pairs for the SMTP sink."""
        out = []
        if self.smtp_port is not None:
            out.append(("25,587", self.smtp_port))
        if self.smtps_port is not None:
            out.append(("465", self.smtps_port))
        return out

    @property
    def chains(self) -> dict[str, str]:
        """chain name -> (table, built-in chain jumping to it)"""
        return {f"{self.chain}-NAT": "nat", f"{self.chain}-IN": "filter",
                f"{self.chain}-FWD": "filter"}


def _ipt(table: str, *args: str) -> Command:
    cmd = ["iptables", "-w"]
    if table != "filter":
        cmd += ["-t", table]
    return cmd + list(args)


def setup(g: Gateway) -> list[Command]:
    """The commands that install the gateway's rules, in order."""
    nat, inp, fwd = f"{g.chain}-NAT", f"{g.chain}-IN", f"{g.chain}-FWD"
    ports = ",".join(str(p) for p in g.ports)
    cmds = [
        _ipt("nat", "-N", nat),
        _ipt("nat", "-A", nat, "-p", "tcp", "-m", "multiport", "--dports", ports,
             "-j", "REDIRECT", "--to-ports", str(g.port)),
    ]
    if g.dns_port is not None:
        cmds.append(_ipt("nat", "-A", nat, "-p", "udp", "--dport", "53",
                         "-j", "REDIRECT", "--to-ports", str(g.dns_port)))
    for dports, sink in g.smtp:
        cmds.append(_ipt("nat", "-A", nat, "-p", "tcp", "-m", "multiport", "--dports", dports,
                         "-j", "REDIRECT", "--to-ports", str(sink)))
    cmds += [
        _ipt("nat", "-I", "PREROUTING", "1", "-i", g.interface, "-j", nat),
        _ipt("filter", "-N", inp),
        _ipt("filter", "-A", inp, "-p", "tcp", "--dport", str(g.port), *REDIRECTED, "-j",
             "ACCEPT"),
    ]
    if g.dns_port is not None:
        cmds.append(_ipt("filter", "-A", inp, "-p", "udp", "--dport", str(g.dns_port),
                         *REDIRECTED, "-j", "ACCEPT"))
    for _, sink in g.smtp:
        cmds.append(_ipt("filter", "-A", inp, "-p", "tcp", "--dport", str(sink), *REDIRECTED,
                         "-j", "ACCEPT"))
    cmds += [
        _ipt("filter", "-A", inp, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"),
        _ipt("filter", "-A", inp, "-j", "DROP"),
        _ipt("filter", "-I", "INPUT", "1", "-i", g.interface, "-j", inp),
        _ipt("filter", "-N", fwd),
        _ipt("filter", "-A", fwd, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"),
        _ipt("filter", "-A", fwd, "-j", "DROP"),
        _ipt("filter", "-I", "FORWARD", "1", "-i", g.interface, "-j", fwd),
        ["ip6tables", "-w", "-I", "INPUT", "1", "-i", g.interface, "-j", "DROP"],
        ["ip6tables", "-w", "-I", "FORWARD", "1", "-i", g.interface, "-j", "DROP"],
    ]
    return cmds


def teardown(g: Gateway) -> list[Command]:
    """The commands that remove what :func:`setup` installed (each may fail if already gone)."""
    cmds: list[Command] = []
    for chain, table in g.chains.items():
        parent = {"NAT": "PREROUTING", "IN": "INPUT", "FWD": "FORWARD"}[chain.rsplit("-", 1)[1]]
        cmds += [_ipt(table, "-D", parent, "-i", g.interface, "-j", chain),
                 _ipt(table, "-F", chain), _ipt(table, "-X", chain)]
    cmds += [["ip6tables", "-w", "-D", "INPUT", "-i", g.interface, "-j", "DROP"],
             ["ip6tables", "-w", "-D", "FORWARD", "-i", g.interface, "-j", "DROP"]]
    return cmds


def purge(listing: Callable[[str, str], str], wanted: Callable[[str], bool]) -> list[Command]:
    """Commands that delete every rule and chain ``wanted`` picks from the current rule set.

    ``listing(tool, table)`` returns ``<tool> -t <table> -S`` output; this finds leftovers
    of a run that could not clean up (killed with SIGKILL, power loss) by name.
    """
    cmds: list[Command] = []
    for tool, tables in (("iptables", ("nat", "filter")), ("ip6tables", ("filter",))):
        for table in tables:
            lines = listing(tool, table).splitlines()
            base = [tool, "-w"] + (["-t", table] if table != "filter" else [])
            for line in lines:
                if line.startswith("-A ") and wanted(line):
                    cmds.append(base + ["-D"] + shlex.split(line)[1:])
            for line in lines:
                if line.startswith("-N ") and wanted(line):
                    chain = line.split()[1]
                    cmds += [base + ["-F", chain], base + ["-X", chain]]
    return cmds


def shell(cmds: Iterable[Command]) -> str:
    """Commands as shell lines."""
    return "\n".join(shlex.join(c) for c in cmds)
