"""The pure pass-through policy: which addresses an allowed name may reach."""

from __future__ import annotations

import pytest

from guard.net.egress import choose, forbidden, is_ip, name_conflict


@pytest.mark.parametrize(("address", "reason"), [
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("169.254.10.10", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("fd12:3456::1", "unique-local"),
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("0.0.0.0", "not a unicast internet address"),
    ("224.0.0.1", "not a unicast internet address"),
    ("not-an-ip", "not an IP address"),
])
def test_internal_addresses_are_refused_with_their_kind(address, reason):
    assert forbidden(address) == reason


# Beyond the ipaddress module: every entry of egress.SPECIAL_RANGES and METADATA_ADDRESSES,
# and IPv6 forms that carry an internal IPv4 address to a gateway that delivers it.
@pytest.mark.parametrize(("address", "reason"), [
    ("168.63.129.16", "cloud metadata"),  # Azure wire server, in a public range
    ("169.254.169.253", "cloud metadata"),  # AWS resolver
    ("192.0.0.192", "cloud metadata"),  # Oracle Cloud
    ("0.1.2.3", "not a unicast internet address"),
    ("192.0.0.8", "private"),
    ("198.18.0.1", "private"),
    ("198.19.255.254", "private"),
    ("fec0::1", "site-local"),
    ("feff:ffff::1", "site-local"),
    ("64:ff9b:1::a00:1", "private"),
    ("100::1", "not a unicast internet address"),
    ("2001:db8::1", "not a unicast internet address"),
    ("2002:a9fe:a9fe::1", "cloud metadata (inside 2002:a9fe:a9fe::1)"),  # 6to4 of metadata
    ("2002:a00:1::1", "private (inside 2002:a00:1::1)"),  # 6to4 of 10.0.0.1
    ("2002:7f00:1::", "loopback (inside 2002:7f00:1::)"),
    ("2002:c0a8:101::1", "private (inside 2002:c0a8:101::1)"),
    ("64:ff9b::169.254.169.254", "cloud metadata (inside 64:ff9b::a9fe:a9fe)"),  # NAT64
    ("64:ff9b::127.0.0.1", "loopback (inside 64:ff9b::7f00:1)"),
    ("64:ff9b::192.168.0.1", "private (inside 64:ff9b::c0a8:1)"),
    ("::169.254.169.254", "cloud metadata (inside ::a9fe:a9fe)"),  # IPv4-compatible
    ("::ffff:0:10.0.0.1", "private (inside ::ffff:0:a00:1)"),  # IPv4-translated
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:168.63.129.16", "cloud metadata"),
])
def test_special_ranges_beyond_the_ipaddress_module_are_refused(address, reason):
    assert forbidden(address) == reason


@pytest.mark.parametrize("address", ["2002:5db8:d70e::1",  # 6to4 of 93.184.215.14
                                     "64:ff9b::8.8.8.8", "168.63.129.17", "198.20.0.1"])
def test_embedded_and_neighbouring_public_addresses_stay_permitted(address):
    assert forbidden(address) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:84e5",
                                     "100.128.0.1"])
def test_public_addresses_are_permitted(address):
    assert forbidden(address) is None


def test_the_first_permitted_address_is_chosen_and_refusals_are_named():
    assert choose("a.test", ["10.0.0.1", "93.184.215.14"], allow_private=False).address \
        == "93.184.215.14"
    route = choose("a.test", ["10.0.0.1", "169.254.169.254"], allow_private=False)
    assert route.address is None
    assert "10.0.0.1 (private)" in route.why and "169.254.169.254 (cloud metadata)" in route.why


def test_allow_private_permits_internal_addresses_and_metadata_names():
    assert choose("a.test", ["127.0.0.1"], allow_private=True).address == "127.0.0.1"
    assert choose("metadata.google.internal", ["169.254.169.254"],
                  allow_private=True).address == "169.254.169.254"


def test_metadata_names_are_refused_whatever_they_resolve_to():
    route = choose("Metadata.Google.Internal.", ["93.184.215.14"], allow_private=False)
    assert route.address is None and "cloud metadata" in route.why


def test_a_name_without_addresses_is_refused():
    assert choose("nowhere.test", [], allow_private=True).why == "nowhere.test does not resolve"


def test_host_and_sni_must_name_the_same_host():
    assert name_conflict("API.stripe.com.", "api.stripe.com") is None
    assert name_conflict("api.stripe.com", None) is None
    assert name_conflict(None, "api.stripe.com") is None
    assert name_conflict("evil.test", "api.stripe.com") == \
        "Host evil.test does not match TLS SNI api.stripe.com"


def test_ip_literals_are_recognized():
    assert is_ip("127.0.0.1") and is_ip("[::1]") and not is_ip("api.stripe.com")
