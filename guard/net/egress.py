"""Where an allowed request may go: the name decides, and some addresses are off limits.

In transparent mode the client picks the destination IP and writes the name
into the Host header and the TLS SNI; it can lie in all three. guard therefore
decides on the name, refuses a request whose Host and SNI disagree, resolves the
allowed name itself and connects only to an address that is not private,
loopback, link-local, carrier-grade NAT, unique-local or cloud metadata, unless
the rule says ``allow_private: true``.

>>> forbidden("169.254.169.254")
'cloud metadata'
>>> forbidden("93.184.215.14") is None
True
>>> name_conflict("api.stripe.com", "evil.example")
'Host api.stripe.com does not match TLS SNI evil.example'
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# Addresses of instance-metadata services; refused like private addresses, named apart
# because reaching one from a sandbox hands out cloud credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.169.123", "169.254.169.253",
              "100.100.100.200", "168.63.129.16", "192.0.0.192", "fd00:ec2::254",
              "fd00:ec2::23")
)
METADATA_NAMES = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.com",
})
CGNAT = ipaddress.ip_network("100.64.0.0/10")

# Ranges refused beyond what the ipaddress module calls private, each with its reason.
# (168.63.129.16, Azure's wire server, is in a public range: it is in METADATA_ADDRESSES.)
SPECIAL_RANGES: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), why) for net, why in (
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("0.0.0.0/8", "not a unicast internet address"),
        ("192.0.0.0/24", "private"),  # IETF protocol assignments (Oracle metadata lives here)
        ("198.18.0.0/15", "private"),  # benchmarking, often used inside data centres
        ("fec0::/10", "site-local"),  # deprecated, still routed inside some networks
        ("64:ff9b:1::/48", "private"),  # local-use NAT64
        ("100::/64", "not a unicast internet address"),  # discard-only
        ("2001:db8::/32", "not a unicast internet address"),  # documentation
    ))
# IPv6 forms that carry an IPv4 address a gateway may deliver to: that IPv4 address decides.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SNI_MISMATCH_RULE_ID = "guard.sni-mismatch"
NO_HOST_RULE_ID = "guard.no-host"
Resolver = Callable[[str, int], Awaitable[list[str]]]


def forbidden(address: str) -> str | None:
    """Why guard must not connect to ``address`` for an ordinary allow rule, or None.

    IPv6 addresses that embed an IPv4 address (mapped, compatible, translated, NAT64,
    6to4, Teredo) are judged by that address as well.

    >>> forbidden("2002:a9fe:a9fe::1"), forbidden("64:ff9b::10.0.0.1")
    ('cloud metadata (inside 2002:a9fe:a9fe::1)', 'private (inside 64:ff9b::a00:1)')
    """
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _forbidden(ip.ipv4_mapped)
        for inner in _embedded(ip):
            why = _forbidden(inner)
            if why is not None:
                return f"{why} (inside {ip})"
        if ip in NAT64:  # DNS64 answers of an IPv6-only network: the IPv4 address decides
            return None
    return _forbidden(ip)


def _embedded(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found += list(ip.teredo)
    packed = int(ip)
    if ip in NAT64 or ip in IPV4_TRANSLATED or (ip in IPV4_COMPATIBLE and packed > 0xFFFF):
        found.append(ipaddress.IPv4Address(packed & 0xFFFFFFFF))
    return found


def _forbidden(ip: IPAddress) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    for network, why in SPECIAL_RANGES:
        if ip.version == network.version and ip in network:
            return why
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "not a unicast internet address"
    if ip.is_private or not ip.is_global:
        return "unique-local" if isinstance(ip, ipaddress.IPv6Address) and ip in _ULA \
            else "private"
    return None


_ULA = ipaddress.ip_network("fc00::/7")


def is_ip(name: str) -> bool:
    """True for an IPv4 or IPv6 address literal (brackets allowed)."""
    try:
        ipaddress.ip_address(normal_name(name))
    except ValueError:
        return False
    return True


def normal_name(name: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets."""
    return name.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def name_conflict(host: str | None, sni: str | None) -> str | None:
    """A reason to refuse when both a Host and a TLS SNI are given and they differ."""
    if not host or not sni:
        return None
    if normal_name(host) != normal_name(sni):
        return f"Host {normal_name(host)} does not match TLS SNI {normal_name(sni)}"
    return None


def unnamed(host: str | None, sni: str | None, transparent: bool) -> tuple[str, str] | None:
    """(rule id, reason) to refuse a request without one name: Host and TLS SNI that
    disagree, or, in transparent mode, neither, which leaves only the destination address.

    >>> unnamed(None, None, transparent=True)[0]
    'guard.no-host'
    >>> unnamed("a.test", None, transparent=True) is None
    True
    """
    conflict = name_conflict(host, sni)
    if conflict:
        return SNI_MISMATCH_RULE_ID, conflict
    if transparent and not host and not sni:
        return NO_HOST_RULE_ID, ("the request names no host (no Host header, no TLS SNI); "
                                 "guard does not decide on a destination address alone")
    return None


async def system_resolve(name: str, port: int) -> list[str]:
    """The addresses ``name`` resolves to in guard's own network namespace, IPv4 first."""
    infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return sorted(addresses, key=lambda a: ":" in a)


@dataclass(frozen=True)
class Route:
    """Where to connect for an allowed name (``address``), or why not (``why``)."""

    address: str | None
    why: str = ""


def choose(name: str, addresses: list[str], *, allow_private: bool) -> Route:
    """Pick the first acceptable address of an allowed name.

    >>> choose("x.test", ["10.0.0.1", "93.184.215.14"], allow_private=False).address
    '93.184.215.14'
    >>> choose("x.test", ["10.0.0.1", "169.254.169.254"], allow_private=False).why
    'x.test resolves only to addresses guard does not connect to: 10.0.0.1 (private), \
169.254.169.254 (cloud metadata)'
    """
    if not allow_private and normal_name(name) in METADATA_NAMES:
        return Route(None, f"{name} is a cloud metadata name")
    if not addresses:
        return Route(None, f"{name} does not resolve")
    refused: list[str] = []
    for address in addresses:
        reason = None if allow_private else forbidden(address)
        if reason is None:
            return Route(address)
        refused.append(f"{address} ({reason})")
    return Route(None, f"{name} resolves only to addresses guard does not connect to: "
                 + ", ".join(refused))
