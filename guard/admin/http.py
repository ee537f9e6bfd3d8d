"""The admin API's HTTP plumbing: bearer-token auth, bounded JSON bodies, JSON errors.

Kept apart from the routes so every route mounted later (metrics, health, a console)
gets the same auth and error shape by being inside :class:`TokenAuth`.

Hostile input is normal here too: a body is read up to a size limit (413 beyond it,
before parsing), must be JSON (415 otherwise), may nest at most :data:`MAX_DEPTH`
levels (400), and any parse failure, including the C decoder's RecursionError on
absurd nesting, is a 400 with a message, never a 500.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from guard.errors import SandboxError

MAX_BODY = 64 * 1024  # a sandbox, fork, snapshot or restore request
MAX_UPLOAD = 64 * 1024 * 1024  # PUT /v1/snapshots/{id}: a whole world
MAX_DEPTH = 64


def error(status: int, kind: str, message: str,
          headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error the admin API gives: ``{"error": {"type": ..., "message": ...}}``."""
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status,
                        headers=headers)


class TokenAuth:
    """ASGI middleware: every request needs ``Authorization: Bearer <token>``, compared in
    constant time. ``public`` paths (exact) are exempt (none by default), and so are the
    paths under each ``own`` prefix (a mount that authenticates every request itself:
    the web console, whose browser sends a session cookie)."""

    def __init__(self, app: ASGIApp, token: str, public: Iterable[str] = (),
                 own: Iterable[str] = ()) -> None:
        self.app = app
        self._token = token.encode()
        self.public = frozenset(public)
        self.own = tuple(own)
        self.received = 0  # HTTP requests that reached the listener, counted on arrival

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.received += 1
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.public or any(
                path == p or path.startswith(p + "/") for p in self.own):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = rest.strip()
                break
        if not hmac.compare_digest(given, self._token):
            response = error(401, "unauthorized", "the admin API needs 'Authorization: "
                             "Bearer <token>' (guard run --admin-token-file)",
                             {"WWW-Authenticate": 'Bearer realm="guard admin"'})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def read_json(request: Request, limit: int = MAX_BODY, *,
                    required: bool = False) -> Any:
    """The request's JSON body (None when empty and not ``required``), bounded."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared is not None and (not (declared.isascii() and declared.isdigit())
                                 or int(declared) > limit):
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise SandboxError("invalid_request", "this request needs a JSON body")
        return None
    if ctype not in ("application/json", ""):
        raise SandboxError("unsupported_media_type",
                           f"send JSON (Content-Type: application/json), not {ctype[:60]!r}")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise SandboxError("invalid_request", f"JSON nested deeper than {MAX_DEPTH} levels"
                           ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise SandboxError("invalid_request", f"the body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise SandboxError("invalid_request", "the body must be a JSON object")
    if depth(data) > MAX_DEPTH:
        raise SandboxError("invalid_request", f"JSON nested deeper than {MAX_DEPTH} levels")
    return data


def depth(data: Any) -> int:
    """How deeply lists and objects nest (iteratively: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


def _too_large(limit: int) -> SandboxError:
    return SandboxError("payload_too_large", f"the body is larger than {limit} bytes")
