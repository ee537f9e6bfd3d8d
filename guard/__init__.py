"""guard: a child-proof egress proxy for AI agent sandboxes.

Every outbound request is matched against YAML rules and then simulated,
blocked or allowed. Only the :mod:`guard.proxy` package imports mitmproxy; the
decision is :func:`guard.pipeline.handle`; everything else works on guard's own small types so that
``guard explain``, ``guard test`` and ``guard replay`` run without a proxy.
"""

__version__ = "0.1.0"
