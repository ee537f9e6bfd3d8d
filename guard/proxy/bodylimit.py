"""The request body limit, inside mitmproxy's HTTP layer.

mitmproxy buffers a request body whole before any addon may answer it, and its own
``body_size_limit`` applies to responses as well (it would cut off a large download an
allow rule lets through). guard refuses a request body over ``--max-body-size`` where
mitmproxy checks its own limit: at the head when ``Content-Length`` says it is too large
(nothing of the body is read), else (chunked) as soon as the bytes buffered pass it. So a
150 MiB upload costs guard at most the limit. The refusal is an HTTP error (413, a guard
JSON error naming :data:`guard.limits.BODY_RULE`; the connection is closed), and the
flow's ``error`` hook fires, where the limits addon names the rule for the audit log.

:func:`install` wraps ``HttpStream.check_body_size`` (mitmproxy 12.2) and the HTTP/1 error
page once per process; the limit is a mitmproxy option (:data:`OPTION`, declared by the
limits addon), so each master has its own. Responses are not touched.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

from mitmproxy import flow as mflow
from mitmproxy import http, version
from mitmproxy.net.http import http1
from mitmproxy.net.http.http1 import expected_http_body_size
from mitmproxy.proxy.layers.http import HttpStream, SendHttp, _http1
from mitmproxy.proxy.layers.http._events import ErrorCode, ResponseProtocolError
from mitmproxy.proxy.layers.http._hooks import HttpErrorHook

from guard.limits import BODY_RULE

OPTION = "guard_max_body_size"
MESSAGE = "guard: the request body is larger than the limit of {limit} bytes (--max-body-size)"
_PREFIX = MESSAGE.split("{", 1)[0]


def is_refusal(message: str) -> bool:
    """Whether a flow error is this limit's refusal."""
    return message.startswith(_PREFIX)


def error_body(message: str) -> bytes:
    """The JSON error guard answers the refusal with (Stripe's SDKs, like most clients,
    read ``error.message`` from it)."""
    return json.dumps({"error": {"type": "guard_limit", "code": "request_too_large",
                                 "rule": BODY_RULE, "message": message}}).encode()


def install() -> None:
    stream = HttpStream
    if getattr(stream.check_body_size, "guard", False):
        return
    original = stream.check_body_size

    def check_body_size(self: Any, request: bool) -> Generator[Any, Any, bool]:
        if request:
            limit = getattr(self.context.options, OPTION, 0)
            size: int | None
            if self.request_body_buf:
                size = len(self.request_body_buf)
            else:
                try:
                    size = expected_http_body_size(self.flow.request, None)
                except ValueError:
                    size = None
            if limit and size is not None and size > limit:
                yield from _refuse(self, MESSAGE.format(limit=limit))
                return True
        return (yield from original(self, request))

    check_body_size.guard = True  # type: ignore[attr-defined]
    stream.check_body_size = check_body_size  # type: ignore[method-assign]

    page = _http1.make_error_response

    def make_error_response(status_code: int, message: str = "") -> bytes:
        if status_code != 413 or not is_refusal(message):
            return bytes(page(status_code, message))
        resp = http.Response.make(status_code, error_body(message), {
            "Server": version.MITMPROXY, "Connection": "close",
            "Content-Type": "application/json", "X-Guard-Rule": BODY_RULE,
            "X-Guard-Action": "block"})
        return bytes(http1.assemble_response(resp))

    _http1.make_error_response = make_error_response


def _refuse(self: Any, message: str) -> Generator[Any, Any, None]:
    """What mitmproxy does when its own limit is passed, with guard's message."""
    self.flow.error = mflow.Error(message)
    yield HttpErrorHook(self.flow)
    yield SendHttp(ResponseProtocolError(self.stream_id, message, ErrorCode.REQUEST_TOO_LARGE),
                   self.context.client)
    self.client_state = self.state_errored
    self.flow.live = False
