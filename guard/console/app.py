"""The web console's routes, mounted on the admin listener under ``/console``.

Pages (static files shipped with guard: one HTML page, one script, one style sheet; no
CDN, no framework, nothing to fetch) and the JSON they read:

======================================  ===============================================
``GET  /console/``                      the console (flows, sandboxes, outbox, rules)
``GET  /console/login``, ``POST``       the login form (see :mod:`guard.console.auth`)
``POST /console/logout``
``GET  /console/api/flows``             flows, newest first (``sandbox``, ``host``,
                                        ``rule``, ``action``, ``before``, ``limit``)
``GET  /console/api/flows/{id}``        one flow: redacted request, response, changes
``GET  /console/api/stream``            server-sent events: flows as they change
``GET  /console/api/sandboxes``         every world, with its sandbox's policy
``GET  /console/api/sandboxes/{s}``     one world: its collections and their sizes
``GET  .../{s}/collections/{c}``        objects of a collection, a page at a time
``GET  .../{s}/outbox``                 the outbox, newest first
``GET  /console/mail/{s}/{id}``         an outbox mail's HTML, cleaned, for the frame
``GET  /console/api/rules``             rules with hits, and requests no rule matched
======================================  ===============================================

Everything an agent controls reaches the browser as JSON data and is put on the page
with ``textContent`` (never parsed as markup; Trusted Types make sure), except the mail
HTML, which :mod:`guard.console.mailview` cleans and a sandboxed frame shows. Reading a
world never creates it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from guard.audit.event import OUTBOX
from guard.console import mailview
from guard.console.auth import (
    ConsoleGate,
    Sessions,
    cookie,
    expired_cookie,
    same_origin,
    session_of,
)
from guard.console.flows import Filters, FlowLog
from guard.errors import NoSuchWorld, SandboxError, StoreUnavailable, WorldError
from guard.rules.loader import RuleSet
from guard.sandbox.registry import Registry
from guard.world.store import WorldStore

PREFIX = "/console"
STREAM_WAIT = 15.0  # seconds between keep-alive comments on an idle stream
STREAM_BATCH = 0.2  # seconds a stream gathers changes before it sends them
PAGE = 50
MAX_PAGE = 500
MAX_LOGIN_BODY = 4096
MAX_SANDBOXES = 1000
FILTERS = ("sandbox", "host", "rule", "action")

_STATIC = {"console.js": "text/javascript; charset=utf-8",
           "console.css": "text/css; charset=utf-8",
           "favicon.svg": "image/svg+xml"}


@dataclass
class Sources:
    """What the console reads: the flow log, the worlds, the registry, the rules."""

    flows: FlowLog
    store: WorldStore
    registry: Registry
    ruleset: Callable[[], RuleSet]


def _read(name: str) -> bytes:
    return (resources.files("guard.console") / "static" / name).read_bytes()


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return _json({"error": {"type": kind, "message": message}}, status)


def _text(request: Request, name: str, limit: int = 256) -> str:
    value = request.query_params.get(name, "")
    if len(value) > limit:
        raise SandboxError("invalid_request", f"?{name}= is longer than {limit} characters")
    return value


def _int(request: Request, name: str, default: int, top: int) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise SandboxError("invalid_request", f"?{name}= takes a whole number")
    return max(1, min(int(value), top)) if top else int(value)


def routes(sources: Sources, sessions: Sessions) -> list[BaseRoute]:
    """The console's routes, behind its gate, as one mount."""
    pages = {"index": _read("index.html"), "login": _read("login.html")}
    static = {name: _read(name) for name in _STATIC}
    flows, store, registry = sources.flows, sources.store, sources.registry

    def html(body: bytes, status: int = 200) -> Response:
        return Response(body, status_code=status, media_type="text/html; charset=utf-8")

    async def index(request: Request) -> Response:
        return html(pages["index"])

    async def login_page(request: Request) -> Response:
        return html(pages["login"])

    async def login(request: Request) -> Response:
        if not same_origin(request.headers, request.url.scheme):
            return _error(403, "forbidden", "the login form must be sent from the console")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY:
                return _error(413, "payload_too_large", "the login form is too large")
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        sid = sessions.login((fields.get("token") or [""])[0].strip())
        if sid is None:
            failed = pages["login"].replace(b'<p id="failed" hidden>', b'<p id="failed">')
            return html(failed, 401)
        response = RedirectResponse(PREFIX + "/", status_code=303)
        response.headers["set-cookie"] = cookie(sid, sessions.lifetime, PREFIX)
        return response

    async def logout(request: Request) -> Response:
        if not same_origin(request.headers, request.url.scheme):
            return _error(403, "forbidden", "logout must be sent from the console")
        sessions.logout(session_of(request.headers))
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.headers["set-cookie"] = expired_cookie(PREFIX)
        return response

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return _error(404, "not_found", "no such file")
        return Response(static[name], media_type=_STATIC[name])

    async def list_flows(request: Request) -> Response:
        filters = Filters(**{f: _text(request, f) for f in FILTERS})
        before = request.query_params.get("before")
        limit = _int(request, "limit", 200, 1000)
        return _json({"version": flows.version, "flows": flows.rows(
            filters, before=_int(request, "before", 0, 0) if before else None,
            limit=limit)})

    async def one_flow(request: Request) -> Response:
        found = flows.flows.get(request.path_params["id"])
        if found is None:
            return _error(404, "not_found", "no such flow here (the console keeps the last "
                          f"{flows.keep}; the audit log has every one)")
        return _json(found)

    async def stream(request: Request) -> Response:
        after = request.headers.get("last-event-id") or request.query_params.get("after")
        if after is None or not (after.isascii() and after.isdigit()) or len(after) > 18:
            raise SandboxError("invalid_request", "?after= takes the version the page has")
        return StreamingResponse(_stream(flows, int(after)), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def sandboxes(request: Request) -> Response:
        names = store.sandboxes()
        out = []
        for name in names[:MAX_SANDBOXES]:
            try:
                info = store.info(name)
            except NoSuchWorld:
                continue
            found = registry.get(name)
            out.append({"sandbox": name, "registered": found is not None,
                        "policy": found.policy.label() if found is not None else None,
                        "labels": found.labels if found is not None else {},
                        "objects": info.objects, "events": info.events,
                        "last_activity": info.last_activity})
        return _json({"sandboxes": out, "more": len(names) > MAX_SANDBOXES})

    def world_of(request: Request) -> str:
        name = request.path_params["sandbox"]
        if not store.exists(name):
            raise SandboxError("not_found", "no such sandbox world")
        return str(name)

    async def sandbox(request: Request) -> Response:
        name = world_of(request)
        info = store.info(name)
        return _json({"sandbox": name, "version": info.version, "counts": info.counts,
                      "bytes": info.bytes, "events": info.events,
                      "last_activity": info.last_activity, "created": info.created})

    async def collection(request: Request) -> Response:
        name = world_of(request)
        coll = request.path_params["collection"]
        limit = _int(request, "limit", PAGE, MAX_PAGE)
        after = request.query_params.get("after") or None
        world = store.world(name)
        objects = _page(world.scan(coll, after=after, reverse=coll == OUTBOX), limit + 1)
        more = len(objects) > limit
        objects = objects[:limit]
        return _json({"sandbox": name, "collection": coll, "objects": objects,
                      "next": str(objects[-1].get("id")) if more and objects else None})

    async def outbox(request: Request) -> Response:
        request.path_params["collection"] = OUTBOX
        return await collection(request)

    async def mail(request: Request) -> Response:
        name = world_of(request)
        record = store.world(name).get(OUTBOX, request.path_params["message"])
        text = record.get("html") if record else None
        if not isinstance(text, str):
            return _error(404, "not_found", "no such message with an HTML body")
        return Response(mailview.page(text), media_type="text/html; charset=utf-8",
                        headers={"content-security-policy": mailview.MAIL_CSP,
                                 "x-frame-options": "SAMEORIGIN"})

    async def rules(request: Request) -> Response:
        ruleset = sources.ruleset()
        hits = flows.rule_hits()
        listed = []
        for rule in ruleset.rules:
            count, last = hits.get(rule.id, (0, ""))
            listed.append({"id": rule.id, "action": rule.action, "pack": rule.pack,
                           "hosts": [h.pattern for h in rule.hosts],
                           "methods": sorted(rule.methods) if rule.methods else None,
                           "paths": [p.template for p in rule.paths],
                           "source": str(rule.source), "hits": count, "last": last})
        known = {r["id"] for r in listed}
        guard_own = [{"id": rule, "hits": n, "last": last}
                     for rule, (n, last) in sorted(hits.items()) if rule not in known]
        unmatched = sorted((u.as_dict() for u in flows.unmatched.values()),
                           key=lambda u: -int(u["count"]))
        return _json({"rules": listed, "other": guard_own, "unmatched": unmatched})

    inner = [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/login", login_page, methods=["GET", "HEAD"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/static/{name}", asset, methods=["GET", "HEAD"]),
        Route("/api/flows", list_flows, methods=["GET"]),
        Route("/api/flows/{id:int}", one_flow, methods=["GET"]),
        Route("/api/stream", stream, methods=["GET"]),
        Route("/api/sandboxes", sandboxes, methods=["GET"]),
        Route("/api/sandboxes/{sandbox}", sandbox, methods=["GET"]),
        Route("/api/sandboxes/{sandbox}/collections/{collection}", collection,
              methods=["GET"]),
        Route("/api/sandboxes/{sandbox}/outbox", outbox, methods=["GET"]),
        Route("/mail/{sandbox}/{message}", mail, methods=["GET"]),
        Route("/api/rules", rules, methods=["GET"]),
    ]

    async def deny(scope: Scope, receive: Receive, send: Send, why: str) -> None:
        path = str(scope.get("path", ""))
        wants_page = scope.get("method") in ("GET", "HEAD") and not path.startswith(
            (PREFIX + "/api/", PREFIX + "/mail/"))
        if why == "login" and wants_page:
            response: Response = RedirectResponse(PREFIX + "/login", status_code=303)
        elif why == "login":
            response = _error(401, "unauthorized", "log in to the console first")
        else:
            response = _error(403 if why != "wrong token" else 401, "forbidden", why)
        await response(scope, receive, send)

    router = Router(routes=inner)

    async def answered(scope: Scope, receive: Receive, send: Send) -> None:
        # errors answered here, inside the gate, so they carry the console's headers too
        try:
            await router(scope, receive, send)
        except SandboxError as e:
            await _error(e.status, e.kind, str(e))(scope, receive, send)
        except StoreUnavailable as e:
            await _error(503, "unavailable", str(e))(scope, receive, send)
        except WorldError as e:
            await _error(400, "invalid_request", str(e))(scope, receive, send)
        except HTTPException as e:
            await _error(e.status_code, "not_found" if e.status_code == 404 else
                         "invalid_request", str(e.detail))(scope, receive, send)

    # logout checks its origin itself and only ever ends the session its cookie names
    gate = ConsoleGate(answered, sessions, prefix=PREFIX,
                       public=("/login", "/logout", "/static/"),
                       deny=deny)

    async def redirect(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=308)

    return [Route(PREFIX, redirect, methods=["GET", "HEAD"]), Mount(PREFIX, app=gate)]


def _page(objects: Any, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for obj in objects:
        out.append(obj)
        if len(out) >= limit:
            break
    return out


async def _stream(flows: FlowLog, version: int) -> AsyncIterator[bytes]:
    """Flows as they change: ``event: flows`` with the changed rows (``id:`` is the log's
    version, so a reconnecting EventSource resumes), ``event: reset`` when the page is
    too far behind to catch up."""
    yield b"retry: 1000\n\n"
    while not flows.closed:
        changed = flows.changed_since(version)
        if changed is None:
            version = flows.version
            data = json.dumps({"version": version})
            yield f"id: {version}\nevent: reset\ndata: {data}\n\n".encode()
        elif changed:
            version = flows.version
            data = json.dumps({"version": version, "flows": changed}, ensure_ascii=True,
                              separators=(",", ":"))
            yield f"id: {version}\nevent: flows\ndata: {data}\n\n".encode()
            await asyncio.sleep(STREAM_BATCH)
            continue
        before = flows.version
        await flows.wait(version, STREAM_WAIT)
        if flows.version == before:
            yield b": keep-alive\n\n"
