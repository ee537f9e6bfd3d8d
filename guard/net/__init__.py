"""Sandbox networks: pure logic for transparent gateways and jails.

``egress`` decides which upstream addresses an allowed request may reach,
``dns`` answers name queries from inside a jail, ``iptables`` writes the iptables
commands of a gateway, ``jail`` builds and tears down a one-command network jail.
None of these modules imports mitmproxy.
"""
