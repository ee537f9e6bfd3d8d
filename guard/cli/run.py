"""``guard run``: start the proxy."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from guard import options
from guard.cli import workers
from guard.errors import AuditError, OptionsError, RuleError, SandboxError, WorldError
from guard.flowlog import FlowLog
from guard.gateway import Seat
from guard.options import Options, default_audit, default_state

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
                   help="run N guard processes on the listening port (one accept queue), 'auto' "
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
    """What ``guard run`` prints once it listens: where, with what, and how to point
    clients at it. With ``-q``, the first line only."""
    ca = cfg.ca
    addrs = ", ".join(dict.fromkeys(f"{h}:{p}" for h, p in m.listen_addrs())) or "?"
    rules = len(m.guard.engine.ruleset.rules)
    host, port = (m.listen_addrs() or [(cfg.listen_host, cfg.listen_port)])[0]
    proxy = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    audit = f"audit log {cfg.audit}" if cfg.audit else "NO audit log (--audit off)"
    print(f"guard: listening on {addrs} (mode {', '.join(cfg.mode)}), {rules} rules, {audit}",
          flush=True)
    if cfg.quiet:
        return
    print(f"guard: CA certificate {ca}")
    if cfg.audit:
        named = "" if cfg.audit == default_audit(cfg.confdir) else f" {cfg.audit}"
        print(f"guard: audit log {cfg.audit} (guard audit tail -f{named}; guard audit list, "
              "summary, export)")
    else:
        print("guard: no audit log (--audit off): guard audit, replay and coverage have "
              "nothing to read")
    if cfg.state:
        named = "" if cfg.state == default_state(cfg.confdir) else f" --state {cfg.state}"
        print(f"guard: sandbox worlds journaled in {cfg.state} (guard outbox{named}; guard "
              f"state list{named}); --state off keeps them in memory only")
    elif cfg.store:
        print(f"guard: sandbox worlds in {m.guard.worlds.describe()}")
    else:
        print("guard: sandbox worlds in memory only (--state off): gone when guard stops")
    print("guard: rule files and templates are " + ("watched for changes; " if cfg.reload else
          "not watched (--no-reload); ") + "SIGHUP reloads them")
    if m.smtp is not None:
        ports = [f"SMTP {host}:{m.smtp.port} (STARTTLS)" if m.smtp.port is not None else "",
                 f"SMTPS {host}:{m.smtp.tls_port}" if m.smtp.tls_port is not None else ""]
        print(f"guard: SMTP sink {', '.join(p for p in ports if p)}: messages go to the "
              "outbox, none is relayed")
    if m.guard.admin is not None:
        where = cfg.admin_token_file or cfg.confdir / "admin-token"
        print(f"guard: admin API on {m.guard.admin.url} (token in {where}; guard sandbox "
              f"--admin {m.guard.admin.url} ...)")
        print(f"guard: web console on {m.guard.admin.url}/console/ (log in with that token); "
              f"/metrics (token), /healthz and /readyz (public) beside it")
    if m.dns_addr is not None:
        print(f"guard: DNS stub on {m.dns_addr[0]}:{m.dns_addr[1]} (UDP)")
    reverse = [mode for mode in cfg.mode if mode.startswith("reverse:")]
    for line in reverse_advice(reverse, host, cfg.listen_port):
        print(line)
    if len(reverse) == len(cfg.mode):  # not a proxy: no proxy variables, no CA to trust
        return
    if "transparent" in cfg.mode:
        for line in transparent_advice(host, port):
            print(line)
        exports = [f"REQUESTS_CA_BUNDLE={ca}", f"SSL_CERT_FILE={ca}", f"NODE_EXTRA_CA_CERTS={ca}"]
    else:
        print("guard: point clients at it with:")
        exports = [f"HTTPS_PROXY={proxy}", f"HTTP_PROXY={proxy}", f"REQUESTS_CA_BUNDLE={ca}",
                   f"SSL_CERT_FILE={ca}", f"CURL_CA_BUNDLE={ca}", f"NODE_EXTRA_CA_CERTS={ca}"]
    for line in exports:
        print(f"  export {line}")
    if "transparent" not in cfg.mode:
        for line in NODE_ADVICE:
            print(line)
    print(f"  (stripe-python: stripe.ca_bundle_path = '{ca}')", flush=True)


NODE_ADVICE = (
    "  Node.js fetch() ignores HTTPS_PROXY and goes direct: with Node >= 24 (or 22.21+) "
    "also export NODE_USE_ENV_PROXY=1;",
    "    older Node: npm install undici, and before the first fetch "
    "setGlobalDispatcher(new EnvHttpProxyAgent()).",
    "  Proxy variables are a request, not a wall: only 'guard jail' or a transparent gateway "
    "make sure nothing goes around guard.",
)


def reverse_advice(modes: list[str], host: str, default_port: int) -> list[str]:
    """What a reverse-mode listener serves, and how an SDK that takes a base URL uses it.

    >>> reverse_advice(["reverse:https://api.stripe.com@12111"], "127.0.0.1", 8080)[1]
    "  stripe-python: stripe.api_base = 'http://127.0.0.1:12111' (any key sk_test_...)"
    """
    lines = []
    for mode in modes:
        target, _, tail = mode.removeprefix("reverse:").rpartition("@")
        if not tail.isdigit():
            target, tail = mode.removeprefix("reverse:"), str(default_port)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        base = f"http://{shown}:{tail}"
        lines.append(f"guard: reverse mode: {base} answers as {target}, over plain HTTP: "
                     "point the client's base URL there (no proxy variables, no CA)")
        if "api.stripe.com" in target:
            lines.append(f"  stripe-python: stripe.api_base = '{base}' (any key sk_test_...)")
    return lines


def transparent_advice(host: str, port: int) -> list[str]:
    """How to send a sandbox's traffic to a transparent listener on ``host``."""
    lines = [f"guard: transparent: redirect the sandbox's TCP 80 and 443 to port {port} "
             f"(guard net rules --interface IF --port {port}); clients trust the CA with "
             "the lines of `guard ca env`:"]
    if host.startswith("127.") or host in ("::1", "localhost"):
        lines.insert(0, f"guard: WARNING: listening on {host}, but iptables REDIRECT delivers "
                     "to the address of the interface the sandbox's traffic arrives on, never "
                     "to loopback: listen on 0.0.0.0 or the gateway address (--listen-host)")
    return lines


def run(args: argparse.Namespace) -> int:
    from guard.proxy.master import build, dns_stub, port_taken, serve

    try:
        cfg = config_from(args)
    except OptionsError as e:
        for message in e.problems:
            print(message, file=sys.stderr)
        print("guard: not starting: bad options", file=sys.stderr)
        return 2
    seat = Seat.from_env()
    index = seat.index if seat is not None else None
    if index is None and (taken := port_taken(cfg)):  # workers share the port on purpose
        print(f"guard: not starting: {taken}", file=sys.stderr)
        return 1
    if getattr(args, "workers", 1) > 1:
        return workers.supervise(args, cfg)
    if index is not None:  # one of --workers N: the supervisor's listeners, own audit file
        from guard.proxy import listeners

        listeners.install(index)
        cfg = cfg.model_copy(update={
            "audit": workers.audit_path(cfg.audit, index) if cfg.audit else None,
            # one DNS stub (UDP) is enough; one admin listener (worker 0's), whose control
            # plane is every worker's (the sandbox registry is in Redis with the worlds)
            **({"dns_listen": None, "admin_listen": None} if index > 0 else {})})
    try:
        dns_stub(cfg)
        guard = build(cfg, seat=seat)
    except RuleError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(f"guard: not starting: {len(e.problems)} problem(s) in rule files",
              file=sys.stderr)
        return 1
    except (AuditError, WorldError, SandboxError, ValueError) as e:
        print(f"guard: not starting: {e}", file=sys.stderr)
        return 1
    if not cfg.quiet:
        guard.recorder.observers.append(FlowLog(sys.stdout, cfg.log_format))
    try:
        quiet = index is not None and index > 0  # the first worker speaks for all
        asyncio.run(serve(guard, None if quiet else lambda master: banner(master, cfg)))
    except OSError as e:  # e.g. the SMTP sink's port is taken
        print(f"guard: stopped: {e}", file=sys.stderr)
        return 1
    return 0
