"""``guard run``: start the proxy."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from guard import options
from guard.cli import workers
from guard.errors import AuditError, OptionsError, RuleError, SandboxError, WorldError
from guard.options import Options

if TYPE_CHECKING:
    from guard.proxy.master import GuardMaster


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="start the proxy",
                       description="Start guard. With no options it serves the built-in "
                       "rule packs on 127.0.0.1:8080 as a regular (explicit) HTTP proxy. "
                       "Every option can also be set as a GUARD_* environment variable or "
                       "in a YAML config file (--config); the command line wins over the "
                       "environment, which wins over the file.")
    add_run_options(p)
    p.add_argument("--workers", type=workers.count, default=1, metavar="N",
                   help="run N guard processes on the listening port (SO_REUSEPORT), 'auto' "
                   "for one per core; needs --store redis://... (default 1)")
    p.set_defaults(func=run)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Every field of :class:`guard.options.Options` as a flag (plus ``--config``)."""
    options.add_flags(p, options.Options)


def config_from(args: argparse.Namespace) -> Options:
    """The run options: command line > ``GUARD_*`` environment > config file > defaults.
    Raises :class:`~guard.errors.OptionsError`."""
    return options.from_args(args, options.Options)


def banner(m: GuardMaster, cfg: Options) -> None:
    ca = cfg.ca
    addrs = ", ".join(f"{h}:{p}" for h, p in m.listen_addrs()) or "?"
    rules = len(m.guard.engine.ruleset.rules)
    host, port = (m.listen_addrs() or [(cfg.listen_host, cfg.listen_port)])[0]
    proxy = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    print(f"guard: listening on {addrs} (mode {', '.join(cfg.mode)}), {rules} rules", flush=True)
    print(f"guard: CA certificate {ca}")
    if cfg.audit:
        print(f"guard: audit log {cfg.audit}")
    print("guard: rule files and templates are " + ("watched for changes; " if cfg.reload else
          "not watched (--no-reload); ") + "SIGHUP reloads them")
    if m.smtp is not None:
        ports = [f"SMTP {host}:{m.smtp.port} (STARTTLS)" if m.smtp.port is not None else "",
                 f"SMTPS {host}:{m.smtp.tls_port}" if m.smtp.tls_port is not None else ""]
        print(f"guard: SMTP sink {', '.join(p for p in ports if p)}: messages go to the "
              "outbox, none is relayed")
    if cfg.store:
        print(f"guard: sandbox worlds in {m.guard.worlds.describe()}")
    if cfg.state:
        print(f"guard: sandbox worlds journaled in {cfg.state} (guard outbox --state "
              f"{cfg.state})")
    if m.guard.admin is not None:
        where = cfg.admin_token_file or cfg.confdir / "admin-token"
        print(f"guard: admin API on {m.guard.admin.url} (token in {where}; guard sandbox "
              f"--admin {m.guard.admin.url} ...)")
    if m.dns_addr is not None:
        print(f"guard: DNS stub on {m.dns_addr[0]}:{m.dns_addr[1]} (UDP)")
    if "transparent" in cfg.mode:
        print(f"guard: transparent: redirect the sandbox's TCP 80 and 443 to port {port} "
              f"(guard net rules --interface IF --port {port}); clients trust the CA with "
              "the lines of `guard ca env`:")
        exports = [f"REQUESTS_CA_BUNDLE={ca}", f"SSL_CERT_FILE={ca}", f"NODE_EXTRA_CA_CERTS={ca}"]
    else:
        print("guard: point clients at it with:")
        exports = [f"HTTPS_PROXY={proxy}", f"HTTP_PROXY={proxy}", f"REQUESTS_CA_BUNDLE={ca}",
                   f"SSL_CERT_FILE={ca}", f"CURL_CA_BUNDLE={ca}", f"NODE_EXTRA_CA_CERTS={ca}"]
    for line in exports:
        print(f"  export {line}")
    print(f"  (stripe-python: stripe.ca_bundle_path = '{ca}')", flush=True)


def run(args: argparse.Namespace) -> int:
    from guard.proxy.master import build, dns_stub, serve

    try:
        cfg = config_from(args)
    except OptionsError as e:
        for message in e.problems:
            print(message, file=sys.stderr)
        print("guard: not starting: bad options", file=sys.stderr)
        return 2
    if getattr(args, "workers", 1) > 1:
        return workers.supervise(args, cfg)
    index = workers.worker_index()
    if index is not None:  # one of --workers N: share the port, own audit file
        from guard.proxy.master import share_port

        share_port()
        cfg = cfg.model_copy(update={
            "audit": workers.audit_path(cfg.audit, index) if cfg.audit else None,
            # one DNS stub (UDP) is enough
            **({"dns_listen": None} if index > 0 else {})})
    try:
        dns_stub(cfg)
        guard = build(cfg)
    except RuleError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(f"guard: not starting: {len(e.problems)} problem(s) in rule files",
              file=sys.stderr)
        return 1
    except (AuditError, WorldError, SandboxError, ValueError) as e:
        print(f"guard: not starting: {e}", file=sys.stderr)
        return 1
    try:
        quiet = index is not None and index > 0  # the first worker speaks for all
        asyncio.run(serve(guard, None if quiet else lambda master: banner(master, cfg)))
    except OSError as e:  # e.g. the SMTP sink's port is taken
        print(f"guard: stopped: {e}", file=sys.stderr)
        return 1
    return 0
