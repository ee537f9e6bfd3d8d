"""The admin API's routes (issue 12): sandboxes, forks, snapshots, diffs, events.

Why Starlette (served by uvicorn inside guard's own event loop, see
:mod:`guard.admin.server`): the admin API shares state with the proxy (the registry,
the world store, the live events), so it must run in the proxy's loop, not a thread
or another process; Starlette is a small, typed ASGI toolkit with routing, mounts and
streaming responses, so the routes that come later (``/metrics``, ``/healthz``,
``/readyz``, a console with static files) mount next to these with the same auth and
error handling, and nothing is fetched from a CDN. A hand-written HTTP server would
need all of that rebuilt, and aiohttp would bring a second HTTP stack beside
mitmproxy's and uvicorn's h11.

Every route is listed once in :data:`ROUTES`, from which both the router and
``/openapi.json`` are built, so the description cannot drift from the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from guard.admin.control import (
    PAGE_LIMIT,
    ControlPlane,
    CreateSandbox,
    ForkSandbox,
    RestoreSnapshot,
    TakeSnapshot,
)
from guard.admin.http import MAX_UPLOAD, TokenAuth, error, read_json
from guard.admin.openapi import document
from guard.errors import SandboxError, WorldError
from guard.request import json_bytes

Handler = Callable[[ControlPlane, Request], Awaitable[Response]]
STREAM_WAIT = 15.0  # seconds an idle event stream waits before a keep-alive comment


@dataclass(frozen=True)
class Op:
    """One operation of the API: its route, handler and OpenAPI description."""

    method: str
    path: str
    name: str
    summary: str
    handler: Handler
    body: type[BaseModel] | None = None
    status: int = 200
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)


def _model(cls: type[BaseModel], data: Any) -> Any:
    try:
        return cls.model_validate(data if data is not None else {})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise SandboxError("invalid_request", f"{where}: {first['msg']}") from None


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise SandboxError("invalid_request", f"?{name}= takes a whole number")
    return int(value)


def _ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def create(c: ControlPlane, r: Request) -> Response:
    body = _model(CreateSandbox, await read_json(r))
    return _ok(await c.run(lambda: c.create(body)), 201)


async def list_sandboxes(c: ControlPlane, r: Request) -> Response:
    labels: dict[str, str] = {}
    for value in r.query_params.getlist("label"):
        key, sep, wanted = value.partition("=")
        if not sep:
            raise SandboxError("invalid_request", "?label= takes KEY=VALUE")
        labels[key] = wanted
    after, limit = r.query_params.get("after"), _int(r, "limit", PAGE_LIMIT)
    return _ok(await c.run(lambda: c.list(labels=labels, after=after, limit=limit)))


async def show(c: ControlPlane, r: Request) -> Response:
    return _ok(await c.run(lambda: c.show(r.path_params["id"])))


async def delete(c: ControlPlane, r: Request) -> Response:
    return _ok(await c.run(lambda: c.delete(r.path_params["id"])))


async def fork(c: ControlPlane, r: Request) -> Response:
    body = _model(ForkSandbox, await read_json(r))
    return _ok(await c.run(lambda: c.fork(r.path_params["id"], body)), 201)


async def reset(c: ControlPlane, r: Request) -> Response:
    await read_json(r)
    return _ok(await c.run(lambda: c.reset(r.path_params["id"])))


async def snapshot(c: ControlPlane, r: Request) -> Response:
    body = _model(TakeSnapshot, await read_json(r))
    return _ok(await c.run(lambda: c.snapshot(r.path_params["id"], body)), 201)


async def restore(c: ControlPlane, r: Request) -> Response:
    body = _model(RestoreSnapshot, await read_json(r, required=True))
    return _ok(await c.run(lambda: c.restore(r.path_params["id"], body)))


async def diff(c: ControlPlane, r: Request) -> Response:
    since = r.query_params.get("since", "")
    return _ok(await c.run(lambda: c.diff(r.path_params["id"], since)))


async def events(c: ControlPlane, r: Request) -> Response:
    after, limit = _int(r, "after", 0), _int(r, "limit", PAGE_LIMIT)
    return _ok(await c.run(lambda: c.events(r.path_params["id"], after, limit)))


async def stream(c: ControlPlane, r: Request) -> Response:
    """Server-sent events: every event after ``Last-Event-ID`` (or ``?after=``), as they
    happen, with a keep-alive comment every 15 s; ends when the sandbox is deleted."""
    sandbox = r.path_params["id"]
    after = r.headers.get("last-event-id") or r.query_params.get("after") or "0"
    if not (after.isascii() and after.isdigit()) or len(after) > 18:
        raise SandboxError("invalid_request", "Last-Event-ID / ?after= takes a whole number")
    await c.run(lambda: c.show(sandbox))  # 404 now, not inside the stream

    async def body() -> AsyncIterator[bytes]:
        last = int(after)
        yield b"retry: 1000\n\n"
        while True:
            try:
                found = await c.wait_events(sandbox, last, STREAM_WAIT)
            except SandboxError:
                yield b"event: end\ndata: {\"reason\": \"sandbox deleted\"}\n\n"
                return
            if not found:
                yield b": keep-alive\n\n"
            for e in found:
                last = int(e["id"])
                data = json_bytes(e).decode()  # a lone surrogate goes out escaped
                yield f"id: {last}\nevent: {e.get('kind', 'event')}\ndata: {data}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def snapshots(c: ControlPlane, r: Request) -> Response:
    return _ok(await c.run(c.snapshots))


async def download(c: ControlPlane, r: Request) -> Response:
    return _ok(await c.run(lambda: c.export_snapshot(r.path_params["sid"])))


async def upload(c: ControlPlane, r: Request) -> Response:
    data = await read_json(r, MAX_UPLOAD, required=True)
    return _ok(await c.run(lambda: c.import_snapshot(r.path_params["sid"], data)), 201)


async def drop_snapshot(c: ControlPlane, r: Request) -> Response:
    return _ok(await c.run(lambda: c.delete_snapshot(r.path_params["sid"])))


SANDBOX = "/v1/sandboxes/{id}"
ROUTES: tuple[Op, ...] = (
    Op("POST", "/v1/sandboxes", "createSandbox", "Create a sandbox: a new empty or seeded "
       "world, a token, a policy", create, CreateSandbox, 201),
    Op("GET", "/v1/sandboxes", "listSandboxes", "List sandboxes, oldest first", list_sandboxes,
       query=(("label", "string", "KEY=VALUE, repeatable: only sandboxes with every label"),
              ("after", "string", "the last id of the previous page"),
              ("limit", "integer", f"page size (default {PAGE_LIMIT}, at most 1000)"))),
    Op("GET", SANDBOX, "getSandbox", "A sandbox: policy, labels, TTL, world counts per "
       "collection, bytes, last activity", show),
    Op("DELETE", SANDBOX, "deleteSandbox", "Delete a sandbox: its world is gone and its "
       "token refused", delete),
    Op("POST", SANDBOX + "/fork", "forkSandbox", "A new sandbox whose world starts as an "
       "exact copy of this one now (copy-on-write)", fork, ForkSandbox, 201),
    Op("POST", SANDBOX + "/reset", "resetSandbox", "Put the world back to what it was "
       "created from", reset),
    Op("POST", SANDBOX + "/snapshots", "snapshotSandbox", "Take an immutable, shared "
       "snapshot of the world", snapshot, TakeSnapshot, 201),
    Op("POST", SANDBOX + "/restore", "restoreSandbox", "Make the world a snapshot", restore,
       RestoreSnapshot),
    Op("GET", SANDBOX + "/diff", "diffSandbox", "What changed in the world (created, "
       "changed field by field, deleted, per collection; and the outbox)", diff,
       query=(("since", "string", "a snapshot id, or a world version number"),)),
    Op("GET", SANDBOX + "/events", "listEvents", "The sandbox's events (what it sees at "
       "guard.internal)", events,
       query=(("after", "integer", "only events with a higher id"),
              ("limit", "integer", "at most this many (default 100)"))),
    Op("GET", SANDBOX + "/events/stream", "streamEvents", "The same events as server-sent "
       "events, live (Last-Event-ID resumes)", stream,
       query=(("after", "integer", "start after this event id"),)),
    Op("GET", "/v1/snapshots", "listSnapshots", "List snapshots", snapshots),
    Op("GET", "/v1/snapshots/{sid}", "getSnapshot", "Download a snapshot (the "
       "'guard state export' format)", download),
    Op("PUT", "/v1/snapshots/{sid}", "putSnapshot", "Upload a snapshot (a 'guard state "
       "export' file)", upload, status=201),
    Op("DELETE", "/v1/snapshots/{sid}", "deleteSnapshot", "Delete a snapshot (worlds "
       "started from it keep their objects)", drop_snapshot),
)


def build_app(control: ControlPlane, token: str, *, extra: list[BaseRoute] | None = None,
              public: tuple[str, ...] = (), own: tuple[str, ...] = ()) -> TokenAuth:
    """The admin ASGI app. ``extra`` routes (metrics, health, the console) mount beside
    the API, behind the same token unless listed in ``public`` (exact paths) or under a
    prefix in ``own`` (mounts that authenticate every request themselves)."""
    def bind(op: Op) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await op.handler(control, request)
        endpoint.__name__ = op.name
        return endpoint

    spec = document(ROUTES)

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    routes: list[BaseRoute] = [Route("/openapi.json", openapi, methods=["GET"])]
    routes += [Route(op.path, bind(op), methods=[op.method]) for op in ROUTES]
    routes += extra or []
    app = Starlette(routes=routes, exception_handlers={
        SandboxError: _sandbox_error, WorldError: _world_error,
        HTTPException: _http_error, Exception: _internal_error})
    return TokenAuth(app, token, public, own)


async def _sandbox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SandboxError)
    return error(exc.status, exc.kind, str(exc))


async def _world_error(request: Request, exc: Exception) -> Response:
    if type(exc).__name__ == "StoreUnavailable":
        return error(503, "unavailable", str(exc))
    return error(400, "invalid_request", str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed"}
    message = {404: f"no such endpoint: {request.url.path[:200]}",
               405: f"{request.method} is not allowed on {request.url.path[:200]}"}
    return error(exc.status_code, kinds.get(exc.status_code, "invalid_request"),
                 message.get(exc.status_code, str(exc.detail)))


async def _internal_error(request: Request, exc: Exception) -> Response:
    import logging

    logging.getLogger("guard").exception("guard: admin API %s %s failed", request.method,
                                         request.url.path[:200])
    return error(500, "internal_error", f"{type(exc).__name__}: {exc}")
