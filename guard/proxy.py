"""Run guard: a lean mitmproxy master with only the addons guard needs, plus GuardAddon.

Stock mitmdump dispatches every event to about 40 addons; guard loads the few
that serve a proxy (core, next-layer, TLS, proxy server, error check), which is
a large part of why it is faster than mitmdump on the same work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitmproxy import master, options
from mitmproxy.addons import core, disable_h2c, errorcheck, next_layer, proxyserver, tlsconfig

from guard import outbox
from guard.addon import GuardAddon, Settings
from guard.audit.event import DEFAULT_BODY_LIMIT, EventBuilder
from guard.audit.redact import Redactor
from guard.audit.signing import load_key
from guard.audit.writer import DEFAULT_CHECKPOINT_EVERY, AuditWriter
from guard.engine import Engine
from guard.errors import SandboxError
from guard.net import dns
from guard.reload import Reloader
from guard.rules import load_rules
from guard.sandbox import Registry, tokens
from guard.sandbox.policies import PolicyEngines
from guard.smtp import SinkConfig, SmtpSink
from guard.synth.simulator import Simulator
from guard.world import open_store, snapshot

log = logging.getLogger("guard")


@dataclass
class RunConfig:
    rules: list[str] = field(default_factory=list)
    builtin: bool = True
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    mode: list[str] = field(default_factory=lambda: ["regular"])
    confdir: Path = Path("~/.guard").expanduser()
    audit: Path | None = None
    audit_body_limit: int = DEFAULT_BODY_LIMIT
    audit_key: Path | None = None  # HMAC secret or Ed25519 private key: signed checkpoints
    audit_max_bytes: int | None = None  # rotate the log file at this size
    audit_budget: int | None = None  # all of the log's files together; oldest deleted
    audit_checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    seed: int | None = None
    state: Path | None = None
    # world store: None (in this process) or redis://HOST:PORT/DB; GUARD_STORE sets it
    store: str | None = field(default_factory=lambda: os.environ.get("GUARD_STORE") or None)
    guard_headers: bool = True
    sandbox_from: str = "client"
    quiet: bool = False
    reload: bool = True  # watch rule files and templates (SIGHUP reloads either way)
    reload_interval: float = 1.0  # seconds between polls
    world: str | None = None  # snapshot file (or seed name) forked into every new sandbox
    webhook_allow: list[str] = field(default_factory=list)  # hosts webhooks may reach
    upstream_ca: Path | None = None  # verify allowed upstreams against these CAs only
    dns_listen: tuple[str, int] | None = None  # serve the sandbox DNS stub here (UDP)
    dns_answer: str | None = None  # the address every name resolves to; default dns host
    smtp_port: int | None = None  # SMTP sink (STARTTLS) on listen_host; 0 picks a free port
    smtps_port: int | None = None  # SMTP sink with implicit TLS (for redirected port 465)
    # the control plane (issue 12) and proven sandbox identity (issue 11.5)
    sandbox_key: Path | None = None  # guard key: tokens derived from it prove a sandbox
    policy_rules: list[str] = field(default_factory=list)  # packs sandbox policies may add
    admin_listen: tuple[str, int] | None = None  # the admin API listener; None = off
    admin_token_file: Path | None = None  # its bearer token (required off loopback)

    def sink(self) -> SinkConfig | None:
        if self.smtp_port is None and self.smtps_port is None:
            return None
        return SinkConfig(self.listen_host, self.smtp_port, self.smtps_port, self.confdir,
                          self.sandbox_from)


class GuardMaster(master.Master):
    """A mitmproxy master with guard's addon and the minimum of mitmproxy's own."""

    def __init__(self, opts: options.Options, addon: GuardAddon,
                 on_running: Callable[[GuardMaster], Any] | None = None,
                 reloader: Reloader | None = None,
                 dns_stub: tuple[str, int, str] | None = None,
                 sink: SinkConfig | None = None) -> None:
        super().__init__(opts, with_termlog=True)
        # mitmdump lowers the root logger to DEBUG; this lean master does not, so guard's own
        # info lines (such as "rules reloaded") would be dropped before termlog's level
        # (info, or warn with -q) could decide.
        logging.getLogger("guard").setLevel(logging.INFO)
        self.guard = addon
        self.reloader = reloader
        self.dns_stub = dns_stub
        self.dns_addr: tuple[str, int] | None = None
        self._dns: asyncio.DatagramTransport | None = None
        self._sink = sink
        self.smtp: SmtpSink | None = None
        self.addons.add(
            core.Core(),
            disable_h2c.DisableH2C(),
            proxyserver.Proxyserver(),
            next_layer.NextLayer(),
            tlsconfig.TlsConfig(),
            errorcheck.ErrorCheck(),
            addon,
        )
        self._on_running = on_running

    async def running(self) -> None:
        await super().running()
        if self.reloader is not None:
            self.reloader.start()
        if self.dns_stub is not None:
            host, port, answer = self.dns_stub
            self._dns = await dns.serve(host, port, answer)
            bound = self._dns.get_extra_info("sockname")
            self.dns_addr = (str(bound[0]), int(bound[1]))
        if self._sink is not None:
            # After configure: the CA the sink signs its certificates with exists by now.
            # A failure (port taken, unreadable CA) propagates and stops guard.
            self.smtp = await SmtpSink(
                self._sink, self.guard.simulator.worlds, self.guard.write_event,
                self.guard.registry,
                self.guard.simulator.options.get(outbox.REDACT_OPTION)).start()
        if self._on_running is not None:
            self._on_running(self)

    async def done(self) -> None:
        if self.reloader is not None:
            self.reloader.stop()
        if self._dns is not None:
            self._dns.close()
        if self.smtp is not None:
            await self.smtp.close()
        await super().done()

    def listen_addrs(self) -> list[tuple[str, int]]:
        ps = self.addons.get("proxyserver")
        return [(str(a[0]), int(a[1])) for a in ps.listen_addrs()]


def option_values(cfg: RunConfig) -> dict[str, Any]:
    """mitmproxy option values for a run (set after the addons have declared them)."""
    cfg.confdir.mkdir(parents=True, exist_ok=True)
    return dict(
        listen_host=cfg.listen_host,
        listen_port=cfg.listen_port,
        mode=cfg.mode,
        confdir=str(cfg.confdir),
        connection_strategy="lazy",
        upstream_cert=False,
        ssl_insecure=False,
        termlog_verbosity="warn" if cfg.quiet else "info",
        **({"ssl_verify_upstream_trusted_ca": str(cfg.upstream_ca)} if cfg.upstream_ca else {}),
    )


def dns_stub(cfg: RunConfig) -> tuple[str, int, str] | None:
    """(host, port, answer) of the DNS stub, or None when it is off."""
    if cfg.dns_listen is None:
        return None
    host, port = cfg.dns_listen
    answer = cfg.dns_answer or host
    if answer in ("0.0.0.0", "::", ""):
        raise ValueError("the DNS stub listens on every address: say which address names "
                         "resolve to (--dns-answer)")
    return host, port, answer


def ensure_ca(confdir: Path) -> Path:
    """guard's CA certificate in ``confdir``, created (as guard run would) if missing."""
    from mitmproxy import certs

    confdir.mkdir(parents=True, exist_ok=True)
    certs.CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir / "mitmproxy-ca-cert.pem"


def build(cfg: RunConfig) -> GuardAddon:
    """Load rules (raising RuleError on any problem) and the ``--world`` snapshot
    (WorldError), open the audit log (AuditError) and assemble guard's addon. The master
    itself is made inside the event loop (:func:`start`)."""
    if cfg.sandbox_from != "client" and cfg.sandbox_key is None and cfg.admin_listen is None:
        raise SandboxError("invalid_request", f"--sandbox-from {cfg.sandbox_from} needs "
                           "proof of identity: --sandbox-key FILE (tokens derived from it) "
                           "or --admin-listen (tokens issued when sandboxes are created)")
    engine = Engine(load_rules(cfg.rules, builtin=cfg.builtin))
    registry = Registry(key=tokens.load_key(cfg.sandbox_key) if cfg.sandbox_key else None,
                        path=cfg.state / "sandboxes.json" if cfg.state else None)
    policies = PolicyEngines(load_rules(cfg.policy_rules, builtin=False)
                             if cfg.policy_rules else None)
    initial = snapshot.read(cfg.world) if cfg.world else None
    worlds = open_store(cfg.store, seed=cfg.seed, state_dir=cfg.state, initial=initial)
    key = load_key(cfg.audit_key) if cfg.audit_key is not None else None
    audit = AuditWriter(cfg.audit, max_bytes=cfg.audit_max_bytes, key=key,
                        checkpoint_every=cfg.audit_checkpoint_every, budget=cfg.audit_budget)
    audit.open()
    events = EventBuilder(Redactor(key.secret if key is not None else None),
                          cfg.audit_body_limit)
    # The outbox is redacted with the log's redactor: the --state journal, `guard outbox`
    # and the log then hold the same text and the same fingerprints.
    simulator = Simulator(worlds, options={"webhook_allow": tuple(cfg.webhook_allow),
                                           outbox.REDACT_OPTION: events.redactor.data})
    return GuardAddon(engine, simulator, audit,
                      Settings(guard_headers=cfg.guard_headers, sandbox_from=cfg.sandbox_from),
                      events, registry=registry, policies=policies)


def start(cfg: RunConfig, addon: GuardAddon,
          on_running: Callable[[GuardMaster], Any] | None = None) -> GuardMaster:
    """Make the master; call from inside a running event loop, then ``await m.run()``."""
    reloader = Reloader(addon, cfg.rules, builtin=cfg.builtin,
                        interval=cfg.reload_interval if cfg.reload else 0)
    m = GuardMaster(options.Options(), addon, on_running, reloader, dns_stub(cfg),
                    cfg.sink())
    m.options.update(**option_values(cfg))
    return m


async def serve(cfg: RunConfig, addon: GuardAddon,
                on_running: Callable[[GuardMaster], Any] | None = None) -> None:
    """Run guard until SIGINT or SIGTERM; SIGHUP reloads the rules."""
    m = start(cfg, addon, on_running)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, m.shutdown)
        except (NotImplementedError, RuntimeError):
            pass
    reloader = m.reloader
    if reloader is not None and hasattr(signal, "SIGHUP"):
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: reloader.trigger("SIGHUP"))
        except (NotImplementedError, RuntimeError):
            pass
    await m.run()
