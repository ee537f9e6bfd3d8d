"""An allowed request whose upstream fails before it answers is answered as guard answers
everything else: JSON naming a rule (:data:`RULE_ID`), audited, instead of mitmproxy's HTML
``502 Bad Gateway`` page.

mitmproxy reports an upstream that cannot be reached (connection refused, no route, a TLS
handshake that fails) or that closes the connection before a response through
``HttpStream.handle_protocol_error``, and sends its error page from inside the HTTP layer,
where no addon can answer. :func:`install` wraps that method (mitmproxy 12.2) once per
process: for such a server-side error, before any of the response was received and after
the whole request was, it asks ``answer(flow, error)`` for a response; with one, the flow
gets it as if an addon had answered (the response hook fires, so the audit recorder
writes the flow with its error); with None (not a flow guard allowed), or for any other
error (the client went away, a response cut off after its headers, a streamed request),
mitmproxy's own handling runs. A working upstream is used as before.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from mitmproxy import http
from mitmproxy.proxy.layers.http import HttpStream
from mitmproxy.proxy.layers.http._events import ErrorCode, ResponseProtocolError

RULE_ID = "guard.upstream-failed"
ANSWERED = (ErrorCode.CONNECT_FAILED, ErrorCode.GENERIC_SERVER_ERROR)

Answer = Callable[[http.HTTPFlow, str], http.Response | None]
_answers: list[Answer] = []  # the running masters' egress gates (one, but tests make many)


def install(answer: Answer) -> None:
    """Answer failed upstreams with ``answer`` (added once per gate)."""
    if answer not in _answers:
        _answers.append(answer)
        del _answers[:-16]  # masters of finished tests are not kept alive
    stream = HttpStream
    if getattr(stream.handle_protocol_error, "guard", False):
        return
    original = stream.handle_protocol_error

    def handle_protocol_error(self: Any, event: Any) -> Generator[Any, Any, None]:
        if (isinstance(event, ResponseProtocolError) and event.code in ANSWERED
                and self.flow.response is None and not self.flow.request.stream
                and self.client_state == self.state_done
                and self.server_state != self.state_errored):
            for ask in reversed(_answers):
                response = ask(self.flow, str(event.message))
                if response is not None:
                    self.flow.response = response
                    yield from self.send_response()
                    return
        yield from original(self, event)

    handle_protocol_error.guard = True  # type: ignore[attr-defined]
    stream.handle_protocol_error = handle_protocol_error  # type: ignore[method-assign]
