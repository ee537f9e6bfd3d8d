"""The sandbox identity addon: which sandbox a flow is from, proven
(:func:`guard.sandbox.identify`, which the SMTP sink uses too), and the flow as guard's
:class:`~guard.request.Request`. The first of guard's addons: it attaches the flow state
the others read; the pipeline refuses a flow whose sandbox is not proven."""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Coroutine, Iterable
from typing import Any

from mitmproxy import connection, http
from mitmproxy.net.http import url

from guard import urlpath
from guard.limits import LimitExceeded, decode_body
from guard.net import egress
from guard.options import SandboxFrom
from guard.proxy.flowstate import FlowState, attach, state_of
from guard.proxy.offload import Offload
from guard.request import Request
from guard.sandbox import Identity, Registry, identify
from guard.sandbox.identity import HEADER as SANDBOX_HEADER

# guard's own headers (they carry sandbox tokens): never the real service's
GUARD_HEADERS = (SANDBOX_HEADER, "proxy-authorization")


class SandboxIdentity:
    def __init__(self, sandbox_from: SandboxFrom, registry: Registry, *,
                 max_decoded_size: int = 0, max_decode_ratio: int = 0,
                 offload: Offload | None = None) -> None:
        self.sandbox_from = sandbox_from
        self.registry = registry
        self.offload = offload  # the registry asks Redis: not on the event loop
        # a body is unpacked (Content-Encoding) only this far: guard/limits.py
        self.max_decoded_size = max_decoded_size
        self.max_decode_ratio = max_decode_ratio
        # client id -> the Proxy-Authorization of its CONNECT ("" when it had none): inside
        # a tunnel only the CONNECT's credentials count, never a header of a tunnelled request
        self._proxy_auth: dict[str, str] = {}

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._proxy_auth[flow.client_conn.id] = flow.request.headers.get(
            "proxy-authorization", "")

    def client_disconnected(self, client: connection.Client) -> None:
        self._proxy_auth.pop(client.id, None)

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        if flow.response is not None:
            return None
        state = state_of(flow)  # attached when the head was read (the head addon)
        if state is None:
            state = attach(flow, FlowState(bare_request(flow)))
        elif state.identity is not None or state.unreadable is not None:
            return None
        if self.offload is not None:
            return self._identify_later(flow, state)  # mitmproxy awaits it
        try:
            identity = self.identify(flow)
        except Exception as e:  # the policy fails it closed (and the recorder audits it)
            state.unreadable = e
            return None
        self._convert(flow, state, identity)
        return None

    async def _identify_later(self, flow: http.HTTPFlow, state: FlowState) -> None:
        """The identity with a shared registry (in Redis), off the loop's critical path."""
        assert self.offload is not None
        r, conn = flow.request, flow.client_conn
        header, proxy_auth = r.headers.get(SANDBOX_HEADER), r.headers.get("proxy-authorization")
        try:
            # the registry's version is checked without a thread hop (a changed registry
            # is reloaded in one); the rest is this process's memory
            view = await self.registry.view_async()
            identity = self.identify_client(conn, header=header, proxy_auth=proxy_auth,
                                            registry=view)
        except Exception as e:  # the policy fails it closed (and the recorder audits it)
            state.unreadable = e
            return
        self._convert(flow, state, identity)

    def _convert(self, flow: http.HTTPFlow, state: FlowState, identity: Identity) -> None:
        state.identity = identity
        sandbox = identity.sandbox or ""
        try:
            state.request = self.to_request(flow, sandbox)
        except LimitExceeded as e:  # a body that unpacks too far: audited as it was sent
            state.request = self.to_request(flow, sandbox, decode=False)
            state.unreadable = e
        except Exception as e:  # the policy fails it closed (and the recorder audits it)
            state.unreadable = e

    def identify(self, flow: http.HTTPFlow) -> Identity:
        """The proven sandbox of a request (see guard.sandbox.identity), or a refusal."""
        r = flow.request
        return self.identify_client(flow.client_conn, header=r.headers.get(SANDBOX_HEADER),
                                    proxy_auth=r.headers.get("proxy-authorization"))

    def identify_client(self, client_conn: connection.Client, *, header: str | None = None,
                        proxy_auth: str | None = None,
                        registry: Registry | None = None) -> Identity:
        """The proven sandbox of a connection's request with these headers (none: what
        the connection alone proves, its address or its CONNECT's credentials), from
        ``registry`` (a view of it) or the registry."""
        client = client_conn.peername[0] if client_conn.peername else ""
        connect_auth = self._proxy_auth.get(client_conn.id)
        if connect_auth is not None:
            proxy_auth = connect_auth
        return identify(self.sandbox_from, self.registry if registry is None else registry,
                        client=client,
                        header=header, proxy_auth=proxy_auth)

    def identify_address(self, address: str) -> str | None:
        """The sandbox a client address names, when addresses name sandboxes (for what
        happens to a connection before any request)."""
        if self.sandbox_from is not SandboxFrom.CLIENT:
            return None
        return identify(self.sandbox_from, self.registry, client=address).sandbox

    def to_request(self, flow: http.HTTPFlow, sandbox: str, *, decode: bool = True) -> Request:
        """The flow as guard's request, in ``sandbox``, its body unpacked as its
        Content-Encoding says (within the limits: LimitExceeded; ``decode=False``: as
        sent). Removes guard's own headers (X-Guard-Sandbox, Proxy-Authorization) from
        the flow."""
        r = flow.request
        client = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        raw = r.raw_content or b""
        body = self.unpack(raw, r.headers.get("content-encoding", "")) if decode else raw
        req = self.build(r.method, r.scheme, host_header_name(flow), flow.client_conn.sni,
                         r.host, r.port, r.path, r.headers.items(multi=True), body, client,
                         sandbox)
        for name in GUARD_HEADERS:
            if name in r.headers:
                del r.headers[name]
        return req

    @staticmethod
    def build(*args: Any) -> Request:
        """:func:`make_request`: what both the flows and the fast path convert with."""
        return make_request(*args)

    def unpack(self, raw: bytes, content_encoding: str) -> bytes:
        """A request body unpacked, never past the limits (guard/limits.py)."""
        return decode_body(raw, content_encoding, max_size=self.max_decoded_size,
                           max_ratio=self.max_decode_ratio)

    def body(self, r: http.Request) -> bytes:
        """The request body unpacked, never past the limits (guard/limits.py)."""
        return self.unpack(r.raw_content or b"", r.headers.get("content-encoding", ""))


def make_request(method: str, scheme: str, host_header: str | None, sni: str | None,
                 target_host: str, port: int, target: str,
                 headers: Iterable[tuple[str, str]], body: bytes, client: str,
                 sandbox: str) -> Request:
    """guard's request from what the connection carried (the proxy's flows and the fast
    path both build it here): named by the Host header (or ``:authority``), else the SNI,
    else the address asked for; the path normalized (what rules match and what is
    forwarded); guard's own headers left out."""
    kept = tuple((k.lower(), v) for k, v in headers if k.lower() not in GUARD_HEADERS)
    host = egress.normal_name(host_header or sni or target_host)
    raw_path = target.split("?", 1)[0]
    path = urlpath.normalize(raw_path)
    # as mitmproxy reads a flow's query: from the whole URL (no fragment)
    query = urllib.parse.urlparse("http://h" + target).query if "?" in target else ""
    return Request(
        method=method.upper(), scheme=scheme, host=host, port=port, path=path,
        raw_path="" if path == raw_path else raw_path,
        query=tuple(url.decode(query)) if query else (), headers=kept, body=body,
        client=client, sandbox=sandbox, sni=sni,
    )


def bare_request(flow: http.HTTPFlow) -> Request:
    """What is known of a flow before it is fully converted (audited if conversion fails)."""
    r = flow.request
    peer = flow.client_conn.peername
    return Request(method=str(r.method), scheme=str(r.scheme), host=str(r.host), port=r.port,
                   path=str(r.path).split("?", 1)[0], client=str(peer[0]) if peer else "",
                   sandbox="")  # none proven yet: a refusal before identity names none


def host_header_name(flow: http.HTTPFlow) -> str | None:
    """The name in the Host header (or ``:authority``), without the port."""
    return authority_name(flow.request.host_header)


def authority_name(value: str | None) -> str | None:
    """The name in a Host header or ``:authority`` value, without the port."""
    if not value:
        return None
    if len(value) > 300:  # not remembered: a hostile client's long names would fill memory
        return _authority_name.__wrapped__(value)
    return _authority_name(value)


@functools.lru_cache(maxsize=1024)  # the same few hosts, request after request
def _authority_name(value: str) -> str | None:
    try:
        return url.parse_authority(value, check=False)[0] or None
    except ValueError:
        return None
