"""A one-command network jail: a fresh network namespace whose only way out is guard.

Layout, for a jail owned by process ``PID`` (names carry the owner's pid, so a
leftover of a killed run is recognised and removed by the next one)::

    host namespace (guard listens here)          namespace guardjail-PID
    gjPIDh  HOST_IP/30  <──── veth ────>  gjPIDj  JAIL_IP/30, default via HOST_IP

- Host side (the security boundary, chains ``GJ-PID-*``, see :mod:`guard.net.iptables`):
  TCP 80/443 from the jail is redirected to guard's transparent listener, UDP 53
  to guard's DNS stub; all other TCP is reset, everything else dropped, IPv6 dropped.
- Jail side (only so programs fail fast instead of timing out): other TCP gets a
  reset and UDP an ICMP error at once.
- ``/etc/netns/guardjail-PID/resolv.conf`` names HOST_IP as the resolver, which
  ``ip netns exec`` mounts over ``/etc/resolv.conf`` for the command.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from guard.errors import NetError
from guard.net import iptables

PREFIX = "guardjail-"
DEFAULT_POOL = "10.213.0.0/16"
NETNS_ETC = Path("/etc/netns")
RUN_DIR = Path("/run/guard-jail")  # namespace identities, for cleaning up after a crash
TOOLS = {"ip": "iproute2", "iptables": "iptables"}


@dataclass(frozen=True)
class JailNet:
    """Names and addresses of one jail."""

    pid: int
    host_ip: str = ""
    jail_ip: str = ""

    @property
    def ns(self) -> str:
        return f"{PREFIX}{self.pid}"

    @property
    def host_if(self) -> str:
        return f"gj{self.pid}h"

    @property
    def jail_if(self) -> str:
        return f"gj{self.pid}j"

    @property
    def chain(self) -> str:
        return f"GJ-{self.pid}"

    @property
    def etc(self) -> Path:
        return NETNS_ETC / self.ns

    @property
    def identity(self) -> Path:
        return RUN_DIR / f"{self.ns}.inode"


def missing_tools() -> list[str]:
    """Packages to install before a jail can be made (empty when all is there)."""
    return [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]


def sh(cmd: Sequence[str], *, check: bool = True) -> str:
    """Run one setup command; NetError naming it and its stderr when it fails."""
    done = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetError(f"`{' '.join(cmd)}` failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def used_networks() -> list[ipaddress.IPv4Network]:
    """IPv4 networks already configured in this namespace (addresses and routes)."""
    nets = []
    text = sh(["ip", "-o", "-4", "addr", "show"]) + sh(["ip", "-4", "route", "show"])
    for match in re.finditer(r"(?<![\w.])(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", text):
        try:
            nets.append(ipaddress.IPv4Network(match.group(1), strict=False))
        except ValueError:
            continue
    return [n for n in nets if n.prefixlen > 0]


def plan(pid: int, pool: str = DEFAULT_POOL,
         used: Sequence[ipaddress.IPv4Network] = ()) -> JailNet:
    """Pick a free /30 in ``pool`` (starting at a slot derived from the pid).

    >>> plan(7, "10.213.0.0/16")
    JailNet(pid=7, host_ip='10.213.0.29', jail_ip='10.213.0.30')
    """
    network = ipaddress.IPv4Network(pool)
    slots = list(network.subnets(new_prefix=30))
    for i in range(len(slots)):
        slot = slots[(pid + i) % len(slots)]
        if not any(slot.overlaps(u) for u in used):
            hosts = list(slot.hosts())
            return JailNet(pid, str(hosts[0]), str(hosts[1]))
    raise NetError(f"no free /30 left in {pool} for a jail")


def create(net: JailNet) -> None:
    """The namespace, the veth pair, addresses, routes, the jail-side rules and resolv.conf."""
    ns, h, j = net.ns, net.host_if, net.jail_if
    sh(["ip", "netns", "add", ns])
    # Remember the namespace's identity: a later cleanup may not see the /run/netns mount
    # (guard jail run under `ip netns exec` mounts it in a private mount namespace).
    # (Not under /etc/netns/NS: `ip netns exec` bind-mounts every file there over /etc.)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    net.identity.write_text(str(os.stat(f"/run/netns/{ns}").st_ino))
    sh(["ip", "link", "add", h, "type", "veth", "peer", "name", j, "netns", ns])
    _write(Path(f"/proc/sys/net/ipv6/conf/{h}/disable_ipv6"), "1")
    sh(["ip", "addr", "add", f"{net.host_ip}/30", "dev", h])
    sh(["ip", "link", "set", h, "up"])
    inside = ["ip", "netns", "exec", ns]
    sh(["ip", "-n", ns, "link", "set", "lo", "up"])
    sh(["ip", "-n", ns, "addr", "add", f"{net.jail_ip}/30", "dev", j])
    sh(["ip", "-n", ns, "link", "set", j, "up"])
    sh(["ip", "-n", ns, "route", "add", "default", "via", net.host_ip])
    # no IPv6 at all in the jail (the host side drops it as well)
    sh(inside + ["sh", "-c", "for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do "
                 'echo 1 > "$f"; done'], check=False)
    for cmd in (
        ["-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"],
        ["-A", "OUTPUT", "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "ACCEPT"],
        ["-A", "OUTPUT", "-d", net.host_ip, "-p", "udp", "--dport", "53", "-j", "ACCEPT"],
        ["-A", "OUTPUT", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-A", "OUTPUT", "-p", "udp", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
    ):
        sh(inside + ["iptables", "-w", *cmd])
    if shutil.which("ip6tables"):
        sh(inside + ["ip6tables", "-w", "-A", "OUTPUT", "!", "-o", "lo", "-j", "REJECT"],
           check=False)
    net.etc.mkdir(parents=True, exist_ok=True)
    (net.etc / "resolv.conf").write_text(
        f"# guard jail: every name resolves to guard\nnameserver {net.host_ip}\n"
        "options timeout:2 attempts:2\n")


def route_to_guard(net: JailNet, port: int, dns_port: int, *, smtp_port: int | None = None,
                   smtps_port: int | None = None) -> None:
    """Host-side rules: the jail's TCP 80/443 and DNS go to guard, and with an SMTP sink
    its TCP 25/587 (and 465) go to the sink; nothing else goes out."""
    gateway = iptables.Gateway(net.host_if, port, dns_port, chain=net.chain,
                            smtp_port=smtp_port, smtps_port=smtps_port)
    for cmd in iptables.setup(gateway):
        if cmd[0] == "ip6tables" and shutil.which("ip6tables") is None:
            continue  # the veth has IPv6 disabled; the ip6tables rules are a second lock
        sh(cmd)
    if gateway.smtp:
        # the jail side lets the mail ports out (before its reject-everything-else rule);
        # the host side above sends them to the sink, whatever address they were for
        dports = ",".join(d for d, _ in gateway.smtp)
        sh(["ip", "netns", "exec", net.ns, "iptables", "-w", "-I", "OUTPUT", "2", "-p", "tcp",
            "-m", "multiport", "--dports", dports, "-j", "ACCEPT"])


def destroy(pid: int) -> list[str]:
    """Remove everything a jail of ``pid`` may have left; returns what could not be removed.

    Every step tolerates a missing piece, so this also cleans a half-built jail.
    """
    net = JailNet(pid)
    problems: list[str] = []
    for cmd in iptables.purge(_listing, lambda line: f"{net.chain}-" in line
                           or f" {net.host_if} " in f"{line} "):
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            problems.append(" ".join(cmd))
    _kill_members(net)
    sh(["ip", "link", "del", net.host_if], check=False)  # takes the jail end with it
    if net.ns in namespaces():
        try:
            sh(["ip", "netns", "del", net.ns])
        except NetError as e:
            problems.append(str(e))
    shutil.rmtree(net.etc, ignore_errors=True)
    net.identity.unlink(missing_ok=True)
    return problems


def _kill_members(net: JailNet) -> None:
    """SIGKILL every process still in the jail's namespace (daemons the command left)."""
    try:
        inode = int(net.identity.read_text())
    except (OSError, ValueError):
        try:
            found = os.stat(f"/run/netns/{net.ns}")
        except OSError:
            return
        if found.st_dev != os.stat("/proc/self/ns/net").st_dev:
            return  # an unmounted placeholder file, not a namespace
        inode = found.st_ino
    member = f"net:[{inode}]"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") == member:
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                continue


def namespaces() -> list[str]:
    return [line.split()[0] for line in sh(["ip", "netns", "list"], check=False).splitlines()
            if line.strip()]


def leftovers() -> set[int]:
    """Pids of jails whose namespace, interface, rules or /etc/netns entry still exist."""
    text = " ".join(namespaces()) + " " + sh(["ip", "-o", "link", "show"], check=False)
    text += " ".join(_listing(t, tb) for t, tb in
                     (("iptables", "nat"), ("iptables", "filter"), ("ip6tables", "filter")))
    for directory in (NETNS_ETC, RUN_DIR):
        if directory.is_dir():
            text += " ".join(p.name for p in directory.iterdir())
    found = re.findall(rf"{PREFIX}(\d+)|\bgj(\d+)[hj]\b|\bGJ-(\d+)-", text)
    return {int(next(g for g in groups if g)) for groups in found}


def clean_stale() -> list[int]:
    """Remove the jails of processes that are gone (killed before they could clean up)."""
    removed = []
    for pid in sorted(leftovers()):
        if not _alive(pid):
            destroy(pid)
            removed.append(pid)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listing(tool: str, table: str) -> str:
    if shutil.which(tool) is None:
        return ""
    return sh([tool, "-w", "-t", table, "-S"], check=False)


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass
