"""``guard jail [guard run options] -- COMMAND ARGS...``: run a command whose only way
out is guard.

guard runs in this process, in the current network namespace, as a transparent
proxy on the host end of a veth pair; the command runs in a fresh namespace at the
other end (see :mod:`guard.net.jail`). The command's exit code is the jail's. The
namespace, the veth pair and the iptables rules are removed when the command ends,
when guard jail gets SIGINT, SIGTERM or SIGHUP, and on any error; a jail whose
owner was killed outright is removed by the next ``guard jail``.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from guard import ca as trust
from guard.cli.run import add_run_options, config_from
from guard.errors import AuditError, NetError, RuleError
from guard.net import jail

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "jail", help="run a command whose only way out is guard (needs root)",
        description="Run COMMAND in a fresh network namespace: its TCP 80/443 goes to guard "
        "(transparent mode), other TCP is refused, UDP dropped, every name resolves, and "
        "the CA variables point at a bundle that includes guard's CA. Needs root.",
        usage="guard jail [guard run options] [--user USER] -- COMMAND [ARGS...]")
    add_run_options(p)
    p.add_argument("--user", default=None, metavar="USER",
                   help="run COMMAND as USER (default: as the caller, usually root)")
    p.add_argument("--jail-net", default=jail.DEFAULT_POOL, metavar="CIDR",
                   help=f"the pool the jail's /30 comes from (default: {jail.DEFAULT_POOL})")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS")
    p.set_defaults(func=run_jail)


class _Stop(Exception):
    """A signal arrived before the command ran: stop setting up, clean up."""

    def __init__(self, signum: int) -> None:
        self.signum = signum


class _Child:
    """The jailed command, and what to do with signals meant for the jail."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.signals = 0

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            raise _Stop(signum)
        if signum == signal.SIGINT and sys.stdin.isatty():
            return  # Ctrl-C: the terminal sent it to the command as well
        self.signals += 1
        proc.send_signal(signal.SIGKILL if self.signals > 2 else signum)


def run_jail(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("guard jail: no command given (guard jail [options] -- COMMAND ARGS...)",
              file=sys.stderr)
        return 2
    if args.mode or args.listen_port != 8080 or args.listen_host != "127.0.0.1":
        print("guard jail: --mode, --listen-host and --listen-port are set by the jail",
              file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("guard jail needs root: it creates a network namespace, a veth pair and "
              "iptables rules. Run it as root (sudo guard jail ...).", file=sys.stderr)
        return 2
    if missing := jail.missing_tools():
        print(f"guard jail needs {' and '.join(missing)} (apt-get install "
              f"{' '.join(missing)})", file=sys.stderr)
        return 2
    if args.user:
        try:
            user = pwd.getpwnam(args.user)
        except KeyError:
            print(f"guard jail: no user {args.user!r}", file=sys.stderr)
            return 2
        if shutil.which("setpriv") is None:
            print("guard jail --user needs setpriv (apt-get install util-linux)", file=sys.stderr)
            return 2
        args.user_ids = (user.pw_uid, user.pw_gid)
    child = _Child()
    previous = {sig: signal.signal(sig, child.on_signal) for sig in FORWARDED}
    net = jail.JailNet(os.getpid())
    workdir = Path(tempfile.mkdtemp(prefix="guard-jail-"))
    try:
        jail.clean_stale()
        net = jail.plan(os.getpid(), args.jail_net, jail.used_networks())
        jail.create(net)
        return _serve(args, command, net, child, workdir)
    except _Stop as e:
        return 128 + e.signum
    except (NetError, RuleError, AuditError) as e:
        print(f"guard jail: {e}", file=sys.stderr)
        return 1
    finally:
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_IGN)  # cleaning up is not to be interrupted
        problems = jail.destroy(net.pid)
        shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for problem in problems:
            print(f"guard jail: could not remove: {problem}", file=sys.stderr)


def _serve(args: argparse.Namespace, command: list[str], net: jail.JailNet, child: _Child,
           workdir: Path) -> int:
    from guard.testing import RunningGuard

    cfg = config_from(args)
    cfg.mode, cfg.listen_host, cfg.listen_port = ["transparent"], net.host_ip, 0
    cfg.dns_listen, cfg.dns_answer = (net.host_ip, 0), net.host_ip
    with RunningGuard(cfg) as guard:
        assert guard.master is not None and guard.master.dns_addr is not None
        jail.route_to_guard(net, guard.port, guard.master.dns_addr[1],
                            smtp_port=guard.smtp_port, smtps_port=guard.smtps_port)
        workdir.chmod(0o755)
        bundle = trust.write_bundle(workdir / "ca-bundle.pem", Path(guard.ca))
        env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
        env.update(trust.environment(Path(guard.ca), bundle), GUARD_JAIL=net.ns)
        argv = ["ip", "netns", "exec", net.ns]
        if args.user:
            uid, gid = args.user_ids
            argv += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"]
        child.proc = subprocess.Popen(argv + command, env=env)
        code = child.proc.wait()
    return 128 - code if code < 0 else code
