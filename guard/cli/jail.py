"""``guard jail [guard run options] -- COMMAND ARGS...``: run a command whose only way
out is guard, and that cannot reach guard itself.

guard runs in this process, in the current network namespace, as a transparent
proxy on the host end of a veth pair; the command runs at the other end, in a fresh
network namespace (see :mod:`guard.net.jail`), inside a bubblewrap sandbox as an
unprivileged user without capabilities, where guard's own files and processes do not
exist (see :mod:`guard.net.sandbox`). The command's exit code is the jail's. The
namespace, the veth pair and the iptables rules are removed when the command ends,
when guard jail gets SIGINT, SIGTERM or SIGHUP, and on any error; a jail whose
owner was killed outright is removed by the next ``guard jail``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from guard import ca as trust
from guard import options
from guard.cli.run import config_from
from guard.errors import AuditError, NetError, OptionsError, RuleError
from guard.flowlog import FlowLog
from guard.net import jail, sandbox
from guard.options import Options

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# guard run options the jail decides itself (guard listens on the jail's veth, transparent)
SET_BY_JAIL = ("mode", "listen_host", "listen_port", "dns_listen", "dns_answer")
# guard run options that name guard's own files: the jail hides them (and the audit log's
# rotated siblings). Every option that holds a path is listed here or in PUBLIC_PATHS.
PRIVATE_PATHS = ("confdir", "rules", "audit", "audit_key", "state", "world", "sandbox_key",
                 "admin_token_file")
PUBLIC_PATHS = ("upstream_ca",)  # CA certificates only; may be the system bundle itself


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "jail", help="run a command whose only way out is guard (needs root)",
        description="Run COMMAND in a fresh network namespace whose TCP 80/443 goes to guard "
        "(transparent mode), other TCP is refused, UDP dropped, every name resolves, and "
        "the CA variables point at a bundle that includes guard's CA. The command runs in a "
        "bubblewrap sandbox as an unprivileged user without capabilities, with a read-only "
        "view of the host in which guard's files and processes do not exist. Needs root.",
        usage="guard jail [guard run options] [--user USER] [--writable DIR] -- "
        "COMMAND [ARGS...]")
    # the jail sets these itself: accepted only to be refused with a message, not listed
    options.add_flags(p, options.Options, hidden=SET_BY_JAIL)
    p.add_argument("--user", default=None, metavar="USER",
                   help="run COMMAND as USER (name or uid; default: the user who ran sudo, "
                   "else nobody); never root")
    p.add_argument(sandbox.ROOT_FLAG, dest="as_root", action="store_true",
                   help="run COMMAND as root with every capability: NOT a boundary (root can "
                   "leave the jail); only for trusted commands")
    p.add_argument("--writable", action="append", default=[], metavar="PATH",
                   help="let COMMAND write PATH (the rest of the filesystem is read-only; /tmp "
                   "is private); repeatable")
    p.add_argument("--readable", action="append", default=[], metavar="PATH",
                   help="show PATH even where a directory above it is closed to the user (a "
                   "toolchain under /root); repeatable")
    p.add_argument("--hide", action="append", default=[], metavar="PATH",
                   help="hide PATH from COMMAND as well (guard's own files always are); "
                   "repeatable")
    p.add_argument("--allow-unix-sockets", action="store_true",
                   help="let COMMAND create Unix sockets (refused by default: it could connect "
                   "to any socket file on the host that its user may write)")
    p.add_argument("--jail-net", default=jail.DEFAULT_POOL, metavar="CIDR",
                   help=f"the pool the jail's /30 comes from (default: {jail.DEFAULT_POOL})")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS",
                   help="the command to run in the jail, after --; its exit code is "
                   "guard jail's")
    p.set_defaults(func=run_jail)


class _Stop(Exception):
    """A signal arrived before the command ran: stop setting up, clean up."""

    def __init__(self, signum: int) -> None:
        self.signum = signum


class _Child:
    """The jailed command, and what to do with signals meant for the jail.

    ``proc`` is bubblewrap; ``init`` its process 1 in the jail's PID namespace (which
    ignores signals); the command is init's child, and gets the signals.
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.init: int | None = None
        self.signals = 0

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            raise _Stop(signum)
        if signum == signal.SIGINT and sys.stdin.isatty():
            return  # Ctrl-C: the terminal sent it to the command as well
        self.signals += 1
        command = self.command()
        if self.signals > 2 or command is None:
            proc.kill()  # bubblewrap's death takes every process of the jail with it
            return
        try:
            os.kill(command, signum)
        except ProcessLookupError:
            pass

    def command(self) -> int | None:
        if self.init is None:
            return None
        try:
            children = Path(f"/proc/{self.init}/task/{self.init}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None


def run_jail(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("guard jail: no command given (guard jail [options] -- COMMAND ARGS...)",
              file=sys.stderr)
        return 2
    given = [options.flag_name(name) for name in SET_BY_JAIL if name in vars(args)]
    if given:
        print(f"guard jail: {', '.join(given)}: set by the jail", file=sys.stderr)
        return 2
    try:
        cfg = config_from(args)
    except OptionsError as e:
        for problem in e.problems:
            print(f"guard jail: {problem}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("guard jail needs root: it creates a network namespace, a veth pair and "
              "iptables rules. Run it as root (sudo guard jail ...).", file=sys.stderr)
        return 2
    if missing := jail.missing_tools() + sandbox.missing():
        print(f"guard jail needs {' and '.join(missing)} (apt-get install "
              f"{' '.join(missing)})", file=sys.stderr)
        return 2
    try:
        args.jail_user = sandbox.choose_user(args.user, as_root=args.as_root)
    except NetError as e:
        print(f"guard jail: {e}", file=sys.stderr)
        return 2
    if args.as_root:
        print(f"guard jail: WARNING: {sandbox.ROOT_FLAG}: the command runs as root with every "
              "capability and can leave the jail (setns, iptables, raw disks). This is not a "
              "boundary; use it only for a command you trust.", file=sys.stderr)
    child = _Child()
    previous = {sig: signal.signal(sig, child.on_signal) for sig in FORWARDED}
    net = jail.JailNet(os.getpid())
    workdir = Path(tempfile.mkdtemp(prefix="guard-jail-"))
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        jail.clean_stale()
        net = jail.plan(os.getpid(), args.jail_net, jail.used_networks())
        jail.create(net)
        return _serve(args, cfg, command, net, child, workdir, umask)
    except _Stop as e:
        return 128 + e.signum
    except (NetError, RuleError, AuditError) as e:
        print(f"guard jail: {e}", file=sys.stderr)
        return 1
    finally:
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_IGN)  # cleaning up is not to be interrupted
        os.umask(umask)
        problems = jail.destroy(net.pid)
        shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for problem in problems:
            print(f"guard jail: could not remove: {problem}", file=sys.stderr)


def private_paths(cfg: Options) -> list[Path]:
    """guard's own files and directories named by ``cfg``, which the jail hides.

    The audit log's siblings (``PATH.1`` of rotation, ...) that exist now are included;
    those made later are private to root anyway (guard jail runs with umask 077).
    """
    paths: list[Path] = []
    for name in PRIVATE_PATHS:
        value: Any = getattr(cfg, name, None)
        for item in value if isinstance(value, list) else [value]:
            if item:
                paths.append(Path(item).expanduser())
    store = getattr(cfg, "store", None) or ""
    if store.startswith("unix://"):  # a Redis socket: the command must not reach worlds
        paths.append(Path(urlsplit(store).path))
    if cfg.audit:
        audit = Path(cfg.audit).expanduser()
        if audit.parent.is_dir():
            paths += [p for p in audit.parent.iterdir() if p.name.startswith(audit.name)]
    return paths


def _serve(args: argparse.Namespace, cfg: Options, command: list[str], net: jail.JailNet,
           child: _Child, workdir: Path, umask: int) -> int:
    from guard.proxy.embedded import RunningGuard

    cfg = cfg.model_copy(update={
        "mode": ["transparent"], "listen_host": net.host_ip, "listen_port": 0,
        "dns_listen": (net.host_ip, 0), "dns_answer": net.host_ip})
    user: sandbox.JailUser = args.jail_user
    running = RunningGuard(cfg)
    if not cfg.quiet:  # one line per request on stderr; stdout is the command's
        running.guard.recorder.observers.append(FlowLog(sys.stderr, cfg.log_format))
    with running as guard:
        assert guard.master is not None and guard.master.dns_addr is not None
        jail.route_to_guard(net, guard.port, guard.master.dns_addr[1],
                            smtp_port=guard.smtp_port, smtps_port=guard.smtps_port)
        public = workdir / "public"  # what the command sees of the workdir
        public.mkdir()
        for made in (workdir, public):
            made.chmod(0o755)
        ca = public / "guard-ca.pem"
        shutil.copyfile(guard.ca, ca)
        ca.chmod(0o644)
        bundle = trust.write_bundle(public / "ca-bundle.pem", ca)
        hidden = private_paths(cfg) + [Path(p) for p in args.hide]
        box = sandbox.Sandbox(user, workdir, public, resolv_conf=net.etc / "resolv.conf",
                              readable=args.readable, writable=args.writable, hidden=hidden,
                              unix_sockets=args.allow_unix_sockets)
        env = _environment(user, net, ca, bundle)
        info_r, info_w = os.pipe()
        try:
            os.umask(0o077)  # what guard writes from now on (rotated audit files) is root's
            child.proc = subprocess.Popen(box.argv(net.ns, command, info_fd=info_w), env=env,
                                          pass_fds=[*box.fds, info_w], umask=umask)
        finally:
            os.close(info_w)
            box.close()
        with os.fdopen(info_r, "rb") as info:
            child.init = _init_pid(info.read())  # bubblewrap closes it once written
        code = child.proc.wait()
    return 128 - code if code < 0 else code


def _environment(user: sandbox.JailUser, net: jail.JailNet, ca: Path,
                 bundle: Path) -> dict[str, str]:
    """The command's environment: the caller's, without proxy settings and guard's own
    variables, with the CA variables, HOME and USER of the jail's user and GUARD_JAIL."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in PROXY_VARS and not k.startswith("GUARD_")}
    env.update(trust.environment(ca, bundle), GUARD_JAIL=net.ns, HOME=user.home_dir)
    if user.name:
        env.update(USER=user.name, LOGNAME=user.name)
    return env


def _init_pid(info: bytes) -> int | None:
    """bubblewrap's ``--info-fd`` report: the pid (here) of the jail's process 1."""
    try:
        pid = json.loads(info)["child-pid"]
    except (ValueError, KeyError, TypeError):
        return None
    return pid if isinstance(pid, int) else None
