"""``guard run``: start the proxy."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from guard.cli.common import add_rules_options, size
from guard.errors import AuditError, RuleError, SandboxError, WorldError

if TYPE_CHECKING:
    from guard.proxy import GuardMaster, RunConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="start the proxy",
                       description="Start guard. With no options it serves the built-in "
                       "rule packs on 127.0.0.1:8080 as a regular (explicit) HTTP proxy.")
    add_run_options(p)
    p.set_defaults(func=run)


def add_run_options(p: argparse.ArgumentParser) -> None:
    add_rules_options(p)
    p.add_argument("--listen-host", default="127.0.0.1", help="default: 127.0.0.1")
    p.add_argument("--listen-port", type=int, default=8080, help="default: 8080")
    p.add_argument("--mode", action="append", default=None, metavar="MODE",
                   help="mitmproxy mode spec: regular (default), transparent, "
                   "reverse:https://host, ... (repeatable)")
    p.add_argument("--confdir", type=Path, default=Path("~/.guard").expanduser(),
                   help="where the CA lives (default: ~/.guard)")
    p.add_argument("--audit", type=Path, default=None, metavar="PATH",
                   help="append audit events (JSON lines) to PATH")
    p.add_argument("--audit-body-limit", type=size, default=64 * 1024, metavar="SIZE",
                   help="keep at most SIZE bytes of each body in the audit log (larger bodies "
                   "are truncated, their SHA-256 kept; default 64KiB)")
    p.add_argument("--audit-key", type=Path, default=None, metavar="FILE",
                   help="sign periodic checkpoints with this key (HMAC secret or Ed25519 "
                   "private key PEM; see 'guard audit keygen'), so truncation is detectable")
    p.add_argument("--audit-max-bytes", type=size, default=None, metavar="SIZE",
                   help="rotate the audit log at SIZE (e.g. 100MiB): PATH becomes PATH.1, "
                   "PATH.2, ... and the chain continues")
    p.add_argument("--audit-budget", type=size, default=None, metavar="SIZE",
                   help="keep PATH and its rotated files under SIZE in total: the oldest "
                   "files are deleted, and the deletion recorded, so the rest still "
                   "verifies (rotates at a tenth of SIZE unless --audit-max-bytes says)")
    p.add_argument("--audit-checkpoint-every", type=int, default=100, metavar="N",
                   help="with --audit-key, a signed checkpoint every N events (default 100)")
    p.add_argument("--seed", type=int, default=None,
                   help="make ids, Faker data and times reproducible (virtual clock)")
    p.add_argument("--state", type=Path, default=None, metavar="DIR",
                   help="persist sandbox worlds under DIR (default: in memory)")
    p.add_argument("--store", default=os.environ.get("GUARD_STORE") or None, metavar="URL",
                   help="where sandbox worlds live: in this process (default) or "
                   "redis://HOST:PORT/DB, shared by every worker and replica (env "
                   "GUARD_STORE)")
    p.add_argument("--sandbox-from", choices=("client", "header", "proxy-user"),
                   default="client",
                   help="what names the sandbox: the client address (default), the "
                   "X-Guard-Sandbox header, or the proxy username")
    p.add_argument("--sandbox-key", type=Path, default=None, metavar="FILE",
                   help="with --sandbox-from header or proxy-user: tokens derived from this "
                   "key (at least 16 bytes; 'guard sandbox token ID --key FILE') prove a "
                   "sandbox, so sandboxes need not be created through the admin API first")
    p.add_argument("--policy-rules", action="append", default=[], metavar="PATH",
                   help="rule packs that are not active by default but that a sandbox's "
                   "policy may add by name (a file or directory, repeatable)")
    p.add_argument("--world", default=None, metavar="FILE",
                   help="fork this world snapshot (a 'guard state export' file, or the name "
                   "of a seed in fixtures/seeds) into every new sandbox")
    p.add_argument("--webhook-allow", action="append", default=[], metavar="HOST",
                   help="also deliver Stripe webhooks to HOST (exact, or *.domain); by "
                   "default only loopback URLs are delivered (repeatable)")
    p.add_argument("--no-guard-headers", dest="guard_headers", action="store_false",
                   help="do not add X-Guard-Rule / X-Guard-Action to responses")
    p.add_argument("--no-reload", dest="reload", action="store_false",
                   help="do not watch rule files and templates for changes (SIGHUP still "
                   "reloads)")
    p.add_argument("--upstream-ca", type=Path, default=None, metavar="PEM",
                   help="verify allowed upstream servers against the CA certificates in PEM "
                   "instead of the certifi bundle (an internal PKI, a test lab)")
    p.add_argument("--dns-listen", type=host_port, default=None, metavar="HOST:PORT",
                   help="also answer DNS queries (UDP) on HOST:PORT, every name with one "
                   "address (--dns-answer): for sandboxes whose only way out is guard")
    p.add_argument("--dns-answer", default=None, metavar="IPV4",
                   help="the address the DNS stub gives for every name (default: the "
                   "--dns-listen host); must reach guard's transparent listener")
    p.add_argument("--smtp-port", type=int, default=None, metavar="PORT",
                   help="also run the SMTP sink (ESMTP, STARTTLS, AUTH) on the listen host: "
                   "every message goes to the outbox, none is relayed")
    p.add_argument("--smtps-port", type=int, default=None, metavar="PORT",
                   help="the SMTP sink with implicit TLS, for clients of port 465")
    p.add_argument("--quiet", "-q", action="store_true", help="log warnings only")


def host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` for every address) as a tuple."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def config_from(args: argparse.Namespace) -> RunConfig:
    from guard.proxy import RunConfig

    return RunConfig(
        rules=args.rules, builtin=args.builtin, listen_host=args.listen_host,
        listen_port=args.listen_port, mode=args.mode or ["regular"],
        confdir=args.confdir.expanduser(), audit=args.audit,
        audit_body_limit=args.audit_body_limit, audit_key=args.audit_key,
        audit_max_bytes=args.audit_max_bytes, audit_checkpoint_every=args.audit_checkpoint_every,
        audit_budget=args.audit_budget,
        seed=args.seed, state=args.state, store=args.store,
        guard_headers=args.guard_headers, sandbox_from=args.sandbox_from, quiet=args.quiet,
        reload=args.reload,
        world=args.world, webhook_allow=list(args.webhook_allow),
        upstream_ca=args.upstream_ca, dns_listen=args.dns_listen, dns_answer=args.dns_answer,
        smtp_port=args.smtp_port, smtps_port=args.smtps_port,
        sandbox_key=args.sandbox_key, policy_rules=list(args.policy_rules),
    )


def banner(m: GuardMaster, cfg: RunConfig) -> None:
    ca = cfg.confdir / "mitmproxy-ca-cert.pem"
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
        print(f"guard: sandbox worlds in {m.guard.simulator.worlds.describe()}")
    if cfg.state:
        print(f"guard: sandbox worlds journaled in {cfg.state} (guard outbox --state "
              f"{cfg.state})")
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
    from guard.proxy import build, dns_stub, serve

    cfg = config_from(args)
    try:
        dns_stub(cfg)
        addon = build(cfg)
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
        asyncio.run(serve(cfg, addon, lambda master: banner(master, cfg)))
    except OSError as e:  # e.g. the SMTP sink's port is taken
        print(f"guard: stopped: {e}", file=sys.stderr)
        return 1
    return 0
