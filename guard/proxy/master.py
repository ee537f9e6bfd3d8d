"""Run guard: a lean mitmproxy master that is just a list of addons.

Stock mitmdump dispatches every event to about 40 addons; guard loads the few of
mitmproxy's that serve a proxy (core, next-layer, TLS, proxy server, error check) and its
own (:mod:`guard.proxy.addons`), which is a large part of why it is faster than mitmdump
on the same work. :func:`build` makes guard's parts from the options (loading rules and
opening the audit log, so errors surface before anything listens); :func:`start` makes
the master inside the event loop; :func:`serve` runs it until a signal.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mitmproxy import master, options
from mitmproxy.addons import core, disable_h2c, errorcheck, next_layer, proxyserver, tlsconfig

from guard import heap, outbox, pipeline
from guard.audit.event import EventBuilder
from guard.audit.redact import Redactor
from guard.audit.signing import load_key
from guard.audit.writer import HEAL_MIN_FREE, AuditWriter
from guard.console.flows import FlowLog
from guard.engine import Engine
from guard.errors import AuditError, SandboxError
from guard.gateway import Seat
from guard.head_limits import HeadLimits
from guard.limits import WORLD_LIMITS_OPTION
from guard.metrics import Metrics, world_totals
from guard.net import egress
from guard.options import Options, SandboxFrom, default_audit
from guard.packs import load_packs
from guard.proxy import bodylimit, fastpath, http1
from guard.proxy.addons import (
    AuditRecorder,
    DnsStub,
    EgressGate,
    GuardInternal,
    Limits,
    Policy,
    Reload,
    RequestHead,
    SandboxIdentity,
    SmtpSinkService,
)
from guard.proxy.addons.deliveries import Deliverer
from guard.proxy.offload import Offload
from guard.reload import Reloader
from guard.sandbox import open_registry, tokens
from guard.sandbox.policies import PolicyEngines
from guard.smtp import SmtpSink
from guard.synth import openworld
from guard.synth.simulator import Simulator
from guard.world import open_store, snapshot
from guard.world.store import WorldStore

if TYPE_CHECKING:
    from guard.admin.health import Health
    from guard.admin.server import AdminServer

log = logging.getLogger("guard")


@dataclass
class Guard:
    """guard's parts, before any event loop: the pipeline's context and the addons."""

    options: Options
    ctx: pipeline.Context
    audit: AuditWriter
    identity: SandboxIdentity
    internal: GuardInternal
    policy: Policy
    egress: EgressGate
    recorder: AuditRecorder
    limits: Limits
    head: RequestHead
    admin: AdminServer | None = None  # the admin listener (--admin-listen)
    # what the admin listener shows (with --admin-listen only: nothing is counted without;
    # in a --workers gateway with one, every worker counts for worker 0's /metrics)
    metrics: Metrics | None = None  # /metrics
    flows: FlowLog | None = None  # the web console's flow list
    health: Health | None = None  # /readyz

    @property
    def worlds(self) -> WorldStore:
        return self.ctx.simulator.worlds

    @property
    def engine(self) -> Engine:
        return self.ctx.packs.engine

    def addons(self) -> list[Any]:
        """guard's per-flow addons, in the order they must run."""
        return [self.limits, self.head, self.identity, self.internal, self.policy, self.egress,
                self.recorder]


def build(opts: Options, *, resolve: egress.Resolver = egress.system_resolve,
          seat: Seat | None = None) -> Guard:
    """Load rules (raising RuleError on any problem) and the ``--world`` snapshot
    (WorldError), open the audit log (AuditError) and make guard's addons. The master
    itself is made inside the event loop (:func:`start`). ``seat``: this process is a
    worker of a ``--workers`` gateway (:mod:`guard.gateway`)."""
    shared = (opts.store or "").startswith(("redis://", "rediss://", "unix://"))
    if opts.sandbox_from is not SandboxFrom.CLIENT and opts.sandbox_key is None \
            and opts.admin_listen is None and not shared:
        raise SandboxError("invalid_request", f"--sandbox-from {opts.sandbox_from} needs "
                           "proof of identity: --sandbox-key FILE (tokens derived from it) "
                           "or --admin-listen (tokens issued when sandboxes are created; "
                           "with --store redis://... any replica's admin API issues them)")
    packs = load_packs(opts.rules, builtin=opts.builtin)
    policies = PolicyEngines(load_packs(opts.policy_rules, builtin=False)
                             if opts.policy_rules else None)
    initial = snapshot.read(opts.world) if opts.world else None
    worlds = open_store(opts.store, seed=opts.seed, state_dir=opts.state, initial=initial)
    registry = open_registry(worlds, tokens.load_key(opts.sandbox_key)
                             if opts.sandbox_key else None,
                             opts.state / "sandboxes.json" if opts.state else None)
    if (opts.audit is not None and not opts.audit.parent.is_dir()
            and opts.audit.parent != default_audit(opts.confdir).parent):
        raise AuditError(f"cannot open audit log {opts.audit}: there is no directory "
                         f"{opts.audit.parent} (guard creates only its own, CONFDIR/audit)")
    key = load_key(opts.audit_key) if opts.audit_key is not None else None
    audit = AuditWriter(opts.audit, max_bytes=opts.audit_max_bytes, key=key,
                        checkpoint_every=opts.audit_checkpoint_every, budget=opts.audit_budget)
    audit.open()
    events = EventBuilder(Redactor(key.secret if key is not None else None),
                          opts.audit_body_limit)
    # The outbox is redacted with the log's redactor: the --state journal, `guard outbox`
    # and the log then hold the same text and the same fingerprints.
    simulator = Simulator(worlds, options={
        "webhook_allow": tuple(opts.webhook_allow), openworld.OPTION: opts.strict_world,
        outbox.REDACT_OPTION: events.redactor.data,
        WORLD_LIMITS_OPTION: (opts.max_world_objects, opts.max_world_bytes)})
    ctx = pipeline.Context(packs, simulator, audit.ready, registry, policies,
                           challenge=opts.sandbox_from is SandboxFrom.PROXY_USER)
    # Simulations run as greenlets on the loop, taking turns (guard.proxy.offload); with
    # Redis, identity and the feed await their round trips the same way.
    simulations = Offload()
    offload = simulations if worlds.blocking else None
    recorder = AuditRecorder(audit, events, worlds, offload)
    if seat is not None:
        recorder.mark = seat.mark()
    metrics = _metrics(opts, seat)
    identity = SandboxIdentity(opts.sandbox_from, registry,
                               max_decoded_size=opts.max_decoded_size,
                               max_decode_ratio=opts.max_decode_ratio, offload=offload)
    head = RequestHead(head_limits(opts), identity, recorder.recorder,
                       guard_headers=opts.guard_headers)
    guard = Guard(opts, ctx, audit, identity, GuardInternal(ctx, worlds, opts.ca, simulations),
                  Policy(ctx, guard_headers=opts.guard_headers, metrics=metrics,
                         offload=simulations),
                  EgressGate(recorder.recorder, resolve), recorder,
                  Limits(opts, identity, recorder.write_event, worlds), head, metrics=metrics)
    if metrics is not None:
        recorder.observers.append(metrics.observe_event)
        audit.on_write = metrics.observe_audit_write
        metrics.gauges.rules = lambda: len(ctx.packs.ruleset.rules)
        metrics.gauges.audit_writable = lambda: audit.broken is None
        if metrics.shared is not None:
            metrics.share_forever()
    if opts.admin_listen is not None:
        guard.admin = admin_server(opts, ctx, guard, seat)
    return guard


def _metrics(opts: Options, seat: Seat | None) -> Metrics | None:
    """What /metrics counts: with --admin-listen; in a gateway with one (the supervisor
    gave its workers a metrics directory), every worker counts, into that directory too."""
    if seat is not None and seat.metrics is not None:
        from guard.sharedmetrics import SharedCounts

        return Metrics(process=opts.admin_listen is not None,
                       shared=SharedCounts(seat.metrics, seat.index))
    return Metrics() if opts.admin_listen is not None else None


def admin_server(opts: Options, ctx: pipeline.Context, guard: Guard,
                 seat: Seat | None = None) -> AdminServer:
    """The admin listener, bound now: a taken port or a refused address stops start-up
    (SandboxError) before the proxy listens. Beside the API it serves the web console,
    /metrics, /healthz and /readyz, fed from ``guard``'s recorder and audit log."""
    from guard.admin import health
    from guard.admin.control import ControlPlane
    from guard.admin.server import AdminServer, load_token
    from guard.console import app as console
    from guard.console.auth import Sessions

    assert opts.admin_listen is not None and guard.metrics is not None
    host, port = opts.admin_listen
    token = load_token(host, opts.admin_token_file, opts.confdir)
    worlds, audit, metrics = ctx.simulator.worlds, guard.audit, guard.metrics
    control = ControlPlane(ctx.registry, worlds, ctx.policies, lambda: ctx.packs)

    guard.flows = FlowLog(worker=seat.index if seat is not None else None)
    guard.recorder.observers.append(guard.flows.observe)
    background = []
    if seat is not None and hasattr(worlds, "watch_events"):  # the other workers' flows
        from guard.console.remote import RemoteFlows

        background.append(RemoteFlows(worlds, guard.flows, seat).run)
    gauges = metrics.gauges
    gauges.sandboxes = lambda: len(ctx.registry)
    gauges.worlds = world_totals(worlds)

    checks: dict[str, health.Check] = {
        "listening": lambda: "the proxy is not listening yet",  # GuardMaster replaces it
        "rules": lambda: None if ctx.packs.ruleset.rules else "no rules are loaded",
        "audit": health.audit_check(audit.ready, audit.path, HEAL_MIN_FREE),
    }
    ping = getattr(worlds, "ping", None)
    if ping is not None:  # the in-process store is always there
        checks["store"] = health.store_check(ping)
    if seat is not None and seat.metrics is not None:  # the gateway's other workers
        checks["workers"] = health.workers_check(seat.metrics, seat.index)
    guard.health = health.Health(checks)

    sources = console.Sources(guard.flows, worlds, ctx.registry, lambda: ctx.packs.ruleset)
    extra = health.routes(guard.health, metrics, token) + console.routes(
        sources, Sessions(token))
    return AdminServer(control, host, port, token, extra=extra,
                       public=health.HEALTH_PATHS, own=(console.PREFIX,),
                       closing=(guard.flows.close,), background=tuple(background))


DRAIN_SECONDS = 10.0  # after SIGTERM, how long requests in flight may take to finish


class InFlight:
    """An addon that knows which requests have not been answered yet (for the drain)."""

    def __init__(self) -> None:
        self.flows: set[str] = set()

    def requestheaders(self, flow: Any) -> None:
        self.flows.add(flow.id)

    def response(self, flow: Any) -> None:
        self.flows.discard(flow.id)

    def error(self, flow: Any) -> None:
        self.flows.discard(flow.id)


class GuardMaster(master.Master):
    """A mitmproxy master with the minimum of mitmproxy's own addons and guard's."""

    def __init__(self, opts: options.Options, guard: Guard,
                 on_running: Callable[[GuardMaster], Any] | None = None) -> None:
        super().__init__(opts, with_termlog=True)
        # mitmdump lowers the root logger to DEBUG; this lean master does not, so guard's own
        # info lines (such as "rules reloaded") would be dropped before termlog's level
        # (info, or warn with -q) could decide.
        logging.getLogger("guard").setLevel(logging.INFO)
        self.guard = guard
        cfg = guard.options
        self.reloader = Reloader(guard.ctx, guard.audit, cfg.rules, builtin=cfg.builtin,
                                 interval=cfg.reload_interval if cfg.reload else 0)
        if guard.metrics is not None:
            reloader = self.reloader
            guard.metrics.gauges.reloads = lambda: (reloader.reloads, reloader.failures)
        if guard.health is not None:
            guard.health.checks["listening"] = self._listening
        stub = dns_stub(cfg)
        self.services: list[Reload | DnsStub | SmtpSinkService | AdminServer | Deliverer] = [
            Reload(self.reloader)]
        self.dns = DnsStub(*stub) if stub is not None else None
        self.sink = (SmtpSinkService(cfg, guard.ctx, guard.recorder.write_event)
                     if cfg.smtp_port is not None or cfg.smtps_port is not None else None)
        self.deliverer = Deliverer(guard.worlds, guard.recorder.recorder,
                                   guard.recorder.events.redactor, cfg.webhook_retries)
        self.services += [s for s in (self.dns, self.sink, guard.admin) if s is not None]
        self.services.append(self.deliverer)
        server, tls = proxyserver.Proxyserver(), tlsconfig.TlsConfig()
        self.addons.add(
            core.Core(),
            disable_h2c.DisableH2C(),
            server,
            next_layer.NextLayer(),
            tls,
            errorcheck.ErrorCheck(),
            *guard.addons(),
            *self.services,
        )
        # the fast path (the default; --no-fast-path turns it off): tunnels to hosts no
        # rule allows are served outside mitmproxy's layers
        self.fast_path = fastpath.install(
            fastpath.Exchange(guard.identity, guard.internal, guard.policy, guard.recorder,
                              head_limits(cfg), cfg.max_body_size),
            server, tls, guard.limits, cfg.idle_timeout) if cfg.fast_path else None
        self._on_running = on_running
        self.inflight = InFlight()
        self.addons.add(self.inflight)
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None

    def drain(self) -> None:
        """SIGTERM: stop listening, let the requests in flight finish (at most
        :data:`DRAIN_SECONDS`), then shut down. A second signal shuts down at once."""
        if self._draining:
            self.shutdown()
            return
        self._draining = True
        self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            await self.addons.get("proxyserver").servers.update([])  # no new connections
        except Exception as e:  # stopping the listener failed: drain what there is
            log.warning("guard: could not stop listening before the drain: %s", e)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        fast = self.fast_path.exchange if self.fast_path is not None else None

        def waiting() -> int:  # through mitmproxy, and on the fast path
            return len(self.inflight.flows) + (fast.inflight if fast is not None else 0)

        if waiting():
            log.info("guard: draining %d request(s) in flight", waiting())
        while waiting() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await self.deliverer.drain(deadline)  # webhooks under way (and due, in-process)
        self.shutdown()

    async def running(self) -> None:
        await super().running()  # every addon's running hook: the services start here
        for service in self.services:
            if service.failure is not None:  # a service that cannot start stops guard
                raise service.failure
        if self._on_running is not None:
            self._on_running(self)

    @property
    def dns_addr(self) -> tuple[str, int] | None:
        return self.dns.addr if self.dns is not None else None

    @property
    def smtp(self) -> SmtpSink | None:
        """The running SMTP sink (``port``, ``tls_port``), or None."""
        return self.sink.sink if self.sink is not None and self.sink.started else None

    def _listening(self) -> str | None:
        try:
            return None if self.listen_addrs() else "the proxy listens on no address"
        except Exception as e:  # the proxy server addon not set up yet
            return f"the proxy is not listening: {e}"

    def listen_addrs(self) -> list[tuple[str, int]]:
        ps = self.addons.get("proxyserver")
        return [(str(a[0]), int(a[1])) for a in ps.listen_addrs()]


def head_limits(cfg: Options) -> HeadLimits:
    return HeadLimits(header_bytes=cfg.max_header_bytes, url_bytes=cfg.max_url_bytes)


def option_values(cfg: Options) -> dict[str, Any]:
    """mitmproxy option values for a run (set after the addons have declared them)."""
    cfg.confdir.mkdir(parents=True, exist_ok=True)
    return dict(
        **{http1.HEAD_OPTION: head_limits(cfg).head_bytes},
        listen_host=cfg.listen_host,
        listen_port=cfg.listen_port,
        mode=cfg.mode,
        confdir=str(cfg.confdir),
        connection_strategy="lazy",
        upstream_cert=False,
        ssl_insecure=False,
        termlog_verbosity="warn" if cfg.quiet else "info",
        tcp_timeout=max(1, round(cfg.idle_timeout)),
        **{bodylimit.OPTION: cfg.max_body_size},
        **({"ssl_verify_upstream_trusted_ca": str(cfg.upstream_ca)} if cfg.upstream_ca else {}),
    )


def dns_stub(cfg: Options) -> tuple[str, int, str] | None:
    """(host, port, answer) of the DNS stub, or None when it is off."""
    if cfg.dns_listen is None:
        return None
    host, port = cfg.dns_listen
    answer = cfg.dns_answer or host
    if answer in ("0.0.0.0", "::", ""):
        raise ValueError("the DNS stub listens on every address: say which address names "
                         "resolve to (--dns-answer)")
    return host, port, answer


def port_taken(cfg: Options) -> str | None:
    """Why guard cannot listen where ``cfg`` says, in guard's words (mitmproxy's would
    suggest ``--mode regular@PORT``), or None. Checked by binding each address the way the
    proxy server will (``SO_REUSEADDR``), then letting go; an invalid mode is left to
    mitmproxy's own message."""
    import errno
    import socket

    from mitmproxy.proxy.mode_specs import ProxyMode

    for spec in cfg.mode:
        try:
            mode = ProxyMode.parse(spec)
        except ValueError:
            return None
        port = mode.listen_port(cfg.listen_port)
        if not port or mode.transport_protocol != "tcp":
            continue
        host = mode.listen_host(cfg.listen_host) or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                where = f"{host}:{port}" + (f" (mode {spec})" if spec != "regular" else "")
                if e.errno == errno.EADDRINUSE:
                    return (f"{where} is already in use (another guard, or another "
                            f"proxy?): stop it, or listen elsewhere with --listen-port PORT "
                            f"(GUARD_LISTEN_PORT, listen_port in guard.yaml)")
                if e.errno == errno.EACCES:
                    return (f"not allowed to listen on {where} (ports below 1024 need root): "
                            "choose another with --listen-port PORT")
                if e.errno == errno.EADDRNOTAVAIL:
                    return (f"cannot listen on {where}: {host} is not an address of this "
                            "machine (--listen-host)")
                return f"cannot listen on {where}: {e.strerror}"
    return None


def start(guard: Guard, on_running: Callable[[GuardMaster], Any] | None = None) -> GuardMaster:
    """Make the master; call from inside a running event loop, then ``await m.run()``."""
    bodylimit.install()
    http1.install()
    m = GuardMaster(options.Options(), guard, on_running)
    m.options.update(**option_values(guard.options))
    return m


async def serve(guard: Guard, on_running: Callable[[GuardMaster], Any] | None = None) -> None:
    """Run guard until SIGINT, or SIGTERM (after the requests in flight are answered);
    SIGHUP reloads the rules."""
    def running(master: GuardMaster) -> None:
        heap.settle()  # what lives as long as guard, out of the full collections
        if on_running is not None:
            on_running(master)

    m = start(guard, running)
    loop = asyncio.get_running_loop()
    for sig, stop in ((signal.SIGINT, m.shutdown), (signal.SIGTERM, m.drain)):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):
            pass
    if hasattr(signal, "SIGHUP"):
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: m.reloader.trigger("SIGHUP"))
        except (NotImplementedError, RuntimeError):
            pass
    await m.run()
