"""guard's mitmproxy layer: the only package that imports mitmproxy.

- :mod:`.master`: the lean master, a list of addons (:func:`~.master.build` makes them);
- :mod:`.addons`: one job each: sandbox identity, policy (calls :mod:`guard.pipeline`),
  guard.internal, egress gate, audit recorder; and the reloader, DNS stub and SMTP sink
  as ``running``/``done`` addons;
- :mod:`.flowstate`: the per-flow state the addons share through ``flow.metadata``;
- :mod:`.embedded`: :class:`~.embedded.RunningGuard`, guard in a background thread (what
  ``guard jail``, tests, benchmarks and agent harnesses embed);
- :mod:`.certs`: the CA, created with mitmproxy's own cert store;
- :mod:`.flowfile`: the audit log as a mitmproxy flow file.
"""
