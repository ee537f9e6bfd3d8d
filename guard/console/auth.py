"""How a browser proves it may see the console, and the headers every console page gets.

A browser cannot send the admin API's ``Authorization: Bearer`` header when it navigates,
and a token in a URL (``?token=``) lands in browser history, proxy logs and ``Referer``
headers, so the console has a login form: ``POST /console/login`` with the admin token in
the form body sets a session cookie,

    ``guard_console=<random id>; HttpOnly; SameSite=Strict; Path=/console``

an id made for this session (never the token), unreadable by scripts (HttpOnly), never
sent with a request another site starts (SameSite=Strict) nor to the ``/v1`` API (Path).
A session ends after :data:`SESSION_SECONDS`, on logout, or when guard restarts.

What a session may do is read: the cookie is accepted for GET and HEAD only, so even a
request forged past SameSite could change nothing, and the console has no endpoint that
changes state (logout aside, which checks its origin). Requests that carry
``Sec-Fetch-Site: cross-site`` (or ``same-site``: another port on the same host is
another origin but the same site) are refused outright. The login form checks its
``Origin``. Scripts and tests may send the bearer token instead of a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "guard_console"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 64  # the oldest session ends when a 65th logs in

PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'; require-trusted-types-for 'script'; "
            "trusted-types 'none'")
"""Every console page: its own script and style only (no inline script, no eval), no
other origin for anything, and Trusted Types on, so assigning a string to ``innerHTML``
or any other HTML sink throws instead of parsing markup."""

SECURITY_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),  # (no-referrer would make forms send Origin: null)
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-store"),
)


class Sessions:
    """Console sessions, kept in memory by the SHA-256 of their cookie value."""

    def __init__(self, token: str, *, lifetime: float = SESSION_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._token = token.encode()
        self.lifetime = lifetime
        self._clock = clock
        self._live: OrderedDict[str, float] = OrderedDict()  # digest -> expiry

    def token_ok(self, given: str | bytes) -> bool:
        raw = given if isinstance(given, bytes) else given.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(raw, self._token)

    def login(self, given: str) -> str | None:
        """A new session id when ``given`` is the admin token, else None."""
        if not self.token_ok(given):
            return None
        sid = secrets.token_urlsafe(32)
        self._live[_digest(sid)] = self._clock() + self.lifetime
        while len(self._live) > MAX_SESSIONS:
            self._live.popitem(last=False)
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        key = _digest(sid)
        expiry = self._live.get(key)
        if expiry is None:
            return False
        if expiry < self._clock():
            del self._live[key]
            return False
        return True

    def logout(self, sid: str | None) -> None:
        if sid:
            self._live.pop(_digest(sid), None)

    def __len__(self) -> int:
        return len(self._live)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogateescape")).hexdigest()


def session_of(headers: Headers) -> str | None:
    """The console cookie's value, if the request has one."""
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE:
            return value
    return None


def bearer(headers: Headers) -> str:
    scheme, _, rest = headers.get("authorization", "").partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else ""


def same_origin(headers: Headers, scheme: str) -> bool:
    """Whether a browser says the request comes from the console's own origin. Requests
    without ``Origin`` and ``Sec-Fetch-Site`` come from no browser (curl, scripts): no
    forgery is possible there, so they pass."""
    site = headers.get("sec-fetch-site")
    if site is not None:  # every current browser sends it, whatever the referrer policy
        return site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return True
    return origin == f"{scheme}://{headers.get('host', '')}"


def cookie(sid: str, lifetime: float, prefix: str) -> str:
    return (f"{COOKIE}={sid}; Path={prefix}; HttpOnly; SameSite=Strict; "
            f"Max-Age={int(lifetime)}")


def expired_cookie(prefix: str) -> str:
    return f"{COOKIE}=; Path={prefix}; HttpOnly; SameSite=Strict; Max-Age=0"


Deny = Callable[[Scope, Receive, Send, str], Awaitable[None]]


class ConsoleGate:
    """ASGI middleware in front of the console's routes: authenticates (``public`` paths
    aside) and adds :data:`SECURITY_HEADERS` and :data:`PAGE_CSP` to every answer, errors
    included (a route may set its own, stricter, CSP and framing headers)."""

    def __init__(self, app: ASGIApp, sessions: Sessions, *, prefix: str,
                 public: tuple[str, ...], deny: Deny) -> None:
        self.app = app
        self.sessions = sessions
        self.prefix = prefix
        self.public = public
        self.deny = deny

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        path = str(scope.get("path", ""))
        sub = path[len(self.prefix):] if path.startswith(self.prefix) else path
        if not any(sub == p or (p.endswith("/") and sub.startswith(p)) for p in self.public):
            why = self.refusal(scope)
            if why is not None:
                await self.deny(scope, receive, send, why)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> str | None:
        """None when the request may see the console, else why not."""
        headers = Headers(scope=scope)
        token = bearer(headers)
        if token:
            return None if self.sessions.token_ok(token) else "wrong token"
        if not self.sessions.valid(session_of(headers)):
            return "login"
        if scope.get("method") not in ("GET", "HEAD"):
            return "a console session may only read"
        if not same_origin(headers, str(scope.get("scheme", "http"))):
            return "cross-origin"
        return None


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            for name, value in SECURITY_HEADERS:
                if name.encode() not in present:
                    headers.append((name.encode(), value.encode()))
            if b"content-security-policy" not in present:
                headers.append((b"content-security-policy", PAGE_CSP.encode()))
            if b"x-frame-options" not in present:
                headers.append((b"x-frame-options", b"DENY"))
            message = {**message, "headers": headers}
        await send(message)
    return wrapped

