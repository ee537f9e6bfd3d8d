"""What an ``allow`` rule allows, beyond its match: guard's own checks on a request that a
rule decided to let through, before it goes anywhere.

A rule written as "GET /public/** on docs.example.com" should let through exactly that: a
GET, to that path, on the web ports. These are refused, each under a rule id of its own::

    guard.port-refused       a port other than 443 and 80 (or the rule's ``ports``)
    guard.upgrade-refused    Upgrade: websocket without ``websocket: true``; any other
                             Upgrade (h2c, raw protocols) always
    guard.method-override    X-HTTP-Method-Override and the like, or ?_method=, which
                             make a server run another method than the one decided on
    guard.read-with-body     GET or HEAD with a body (an embedded request for servers
                             that read one)
    guard.ambiguous-path     a path servers may read differently from guard (see
                             guard/urlpath.py), unless ``ambiguous_paths: allow``

>>> from guard.request import Request
>>> refusal(Request.build("GET", "https://docs.test:9200/"), None).rule_id
'guard.port-refused'
>>> refusal(Request.build("GET", "https://docs.test/a"), None) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guard.request import Request
from guard.urlpath import ambiguity

DEFAULT_PORTS = (443, 80)
PORT_RULE_ID = "guard.port-refused"
UPGRADE_RULE_ID = "guard.upgrade-refused"
OVERRIDE_RULE_ID = "guard.method-override"
BODY_RULE_ID = "guard.read-with-body"
PATH_RULE_ID = "guard.ambiguous-path"
OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override",
                    "x-original-method")
OVERRIDE_PARAMS = ("_method", "x-http-method-override")


@dataclass(frozen=True)
class Refusal:
    rule_id: str
    reason: str


def refusal(req: Request, rule: Any) -> Refusal | None:
    """Why guard refuses ``req`` although ``rule`` (a ``guard.rules.model.Rule``, or None
    for the defaults) allows it, or None."""
    ports = list(DEFAULT_PORTS) if rule is None or rule.ports is None else rule.ports
    if not port_allowed(req.port, ports):
        named = ", ".join(str(p) for p in ports)
        return Refusal(PORT_RULE_ID, f"port {req.port} is not one the rule allows ({named}); "
                       "an allow rule names other ports with ports: [...]")
    upgrade = (req.header("upgrade") or "").strip()
    connection = {t.strip().lower() for t in (req.header("connection") or "").split(",")}
    if upgrade or "upgrade" in connection:
        websocket = upgrade.lower() == "websocket"
        if not websocket:
            named = _short(upgrade) or "(none named)"
            return Refusal(UPGRADE_RULE_ID, f"an upgrade to {named!r} leaves HTTP, where "
                           "guard cannot see what is sent")
        if rule is None or not rule.websocket:
            return Refusal(UPGRADE_RULE_ID, "a WebSocket upgrade needs an allow rule that "
                           "says websocket: true")
    for name in OVERRIDE_HEADERS:
        if req.header(name) is not None:
            return Refusal(OVERRIDE_RULE_ID, f"{name} would make the server run "
                           f"{_short(req.header(name))!r} instead of {req.method}")
    for key, value in req.query:
        if key.lower() in OVERRIDE_PARAMS:
            return Refusal(OVERRIDE_RULE_ID, f"?{_short(key)}= would make the server run "
                           f"{_short(value)!r} instead of {req.method}")
    if req.method in ("GET", "HEAD") and _has_body(req):
        return Refusal(BODY_RULE_ID, f"a {req.method} request with a body: some servers read "
                       "it as another request")
    if rule is None or rule.ambiguous_paths != "allow":
        why = ambiguity(req.sent_path)
        if why is not None:
            return Refusal(PATH_RULE_ID, f"the path {_short(req.sent_path)!r} has {why}, which "
                           "servers read differently; the rule may say ambiguous_paths: allow")
    return None


def port_allowed(port: int, ports: list[int | str] | Any) -> bool:
    """``port`` is one of ``ports`` (numbers, or ranges written ``"8000-8999"``).

    >>> port_allowed(8443, [443, "8000-8999"]), port_allowed(80, [443])
    (True, False)
    """
    for entry in ports:
        if isinstance(entry, int) and entry == port:
            return True
        if isinstance(entry, str):
            low, _, high = entry.partition("-")
            if int(low) <= port <= int(high):
                return True
    return False


def _has_body(req: Request) -> bool:
    if req.body:
        return True
    length = (req.header("content-length") or "0").strip()
    return req.header("transfer-encoding") is not None or length not in ("", "0")


def _short(text: str | None, limit: int = 120) -> str:
    """Request data quoted in a reason, cut to ``limit`` characters."""
    text = text or ""
    return text if len(text) <= limit else text[:limit] + "..."
