"""The fast path (``--fast-path``): HTTPS tunnels to hosts that no rule allows are served
by guard itself, outside mitmproxy's layer stack; mitmproxy carries everything else.

Why: on simulated traffic most of a guard process's CPU goes to mitmproxy's layers
(TLS through pyOpenSSL memory buffers, HTTP/2, layer events and hook dispatch), more
than to guard's own work. Here TLS is Python's ``ssl`` on the socket, HTTP/1.1 and
HTTP/2 (the ``h2`` library, as mitmproxy's) are read and written directly, and each
request goes straight to the pipeline.

What holds as on the mitmproxy path: decisions by name with the same Host/SNI check
(:func:`guard.pipeline.handle` decides, from the same :class:`~guard.request.Request`);
the sandbox proven the same way (the CONNECT's Proxy-Authorization, X-Guard-Sandbox,
the client address); guard.internal answered; faults injected; failing closed (an
exception is a 500 naming the rule, an unwritable log a 503); every request audited
through the same recorder before its answer is sent; and no upstream contact, because
this path has no way to connect anywhere: a tunnel is only taken for a host no rule
allows, and a request that is allowed all the same is refused. Only regular mode
(``CONNECT``) tunnels are taken; transparent and other modes, plain HTTP and CONNECT to
an address or an allowed host go to mitmproxy with their bytes untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mitmproxy.proxy.mode_servers import RegularInstance

from guard.proxy.fastpath.exchange import Exchange
from guard.proxy.fastpath.server import FastPath

if TYPE_CHECKING:
    from mitmproxy.addons.proxyserver import Proxyserver
    from mitmproxy.addons.tlsconfig import TlsConfig

    from guard.proxy.addons.limits import Limits

__all__ = ["Exchange", "FastPath", "install"]


def install(exchange: Exchange, proxyserver: Proxyserver, tlsconfig: TlsConfig,
            limits: Limits | None = None, idle_timeout: float = 300.0) -> FastPath:
    """Put the fast path, answering with ``exchange`` (guard's addons), in front of every
    regular-mode listener ``proxyserver`` starts (it is told of new listeners before they
    listen); ``limits`` (the limits addon) counts its connections and times their heads."""
    fast = FastPath(exchange, lambda: tlsconfig.certstore, limits=limits,
                    idle_timeout=idle_timeout)

    def wrap_new_listeners() -> None:
        for instance in proxyserver.servers:
            if isinstance(instance, RegularInstance) and "handle_stream" not in vars(instance):
                instance.handle_stream = fast.wrap(instance.handle_stream)  # type: ignore[method-assign,assignment]

    proxyserver.servers.changed.connect(wrap_new_listeners)
    fast.keep = wrap_new_listeners  # the signal holds receivers weakly
    return fast
