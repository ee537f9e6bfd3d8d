"""An allowed request whose upstream cannot be reached is answered as guard answers
everything else: JSON naming a rule (:data:`RULE_ID`), audited, instead of mitmproxy's HTML
``502 Bad Gateway`` page.

mitmproxy opens the upstream connection of an allowed request in
``HttpStream.make_server_connection`` and, when that fails (connection refused, no route,
a TLS handshake that fails), sends its error page from inside the HTTP layer, where no
addon can answer. :func:`install` wraps that method (mitmproxy 12.2) once per process: on
a failure it asks ``answer(flow, error)`` for a response; with one, the flow gets it as if
an addon had answered (the response hook fires, so the audit recorder writes the flow with
its error); with None (not a flow guard allowed, a streamed request body), mitmproxy's own
handling runs. Nothing else changes: a working upstream is used as before.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from mitmproxy import http
from mitmproxy.proxy.layers.http import GetHttpConnection, HttpStream
from mitmproxy.proxy.layers.http._events import ErrorCode, ResponseProtocolError

RULE_ID = "guard.upstream-failed"

Answer = Callable[[http.HTTPFlow, str], http.Response | None]
_answers: list[Answer] = []  # the running masters' egress gates (one, but tests make many)


def install(answer: Answer) -> None:
    """Answer failed upstream connections with ``answer`` (added once per gate)."""
    if answer not in _answers:
        _answers.append(answer)
        del _answers[:-16]  # masters of finished tests are not kept alive
    stream = HttpStream
    if getattr(stream.make_server_connection, "guard", False):
        return

    def make_server_connection(self: Any) -> Generator[Any, Any, bool]:
        connection, err = yield GetHttpConnection(
            (self.flow.request.host, self.flow.request.port),
            self.flow.request.scheme == "https",
            self.flow.server_conn.via,
            self.flow.server_conn.transport_protocol,
        )
        if not err:
            self.context.server = self.flow.server_conn = connection
            return True
        response = None
        if not self.flow.request.stream and self.flow.response is None:
            for ask in reversed(_answers):
                response = ask(self.flow, str(err))
                if response is not None:
                    break
        if response is None:  # mitmproxy's own way
            yield from self.handle_protocol_error(
                ResponseProtocolError(self.stream_id, err, ErrorCode.CONNECT_FAILED))
            return False
        self.flow.response = response
        yield from self.send_response()
        return False

    make_server_connection.guard = True  # type: ignore[attr-defined]
    stream.make_server_connection = make_server_connection  # type: ignore[method-assign]
