"""``guard net rules``: the iptables commands of a transparent guard gateway."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from guard.net import iptables
from guard.options import Options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("net", help="sandbox network helpers (gateway firewall rules)",
                       description="Helpers for running guard as a transparent gateway.")
    net = p.add_subparsers(dest="net_command", metavar="SUBCOMMAND", required=True)
    r = net.add_parser(
        "rules", help="print (or apply) the iptables commands of a gateway",
        description="Print the commands that send a sandbox's TCP 80/443 arriving on "
        "INTERFACE to guard's transparent listener and refuse everything else. Run guard "
        "with `guard run --mode transparent --listen-host 0.0.0.0 --listen-port PORT`.")
    r.add_argument("--interface", "-i", required=True, metavar="IF",
                   help="the interface the sandbox's traffic arrives on")
    port = Options.model_fields["listen_port"].default
    r.add_argument("--port", "-p", type=int, default=port,
                   help=f"guard's transparent listener port (default: {port}, guard run's)")
    r.add_argument("--dns-port", type=int, default=None, metavar="PORT",
                   help="also redirect the sandbox's DNS (UDP 53) to guard's DNS stub on PORT "
                   "(guard run --dns-listen 0.0.0.0:PORT --dns-answer GATEWAY_IP)")
    r.add_argument("--smtp-port", type=int, default=None, metavar="PORT",
                   help="also redirect the sandbox's SMTP (TCP 25 and 587) to guard's SMTP sink "
                   "on PORT (guard run --smtp-port PORT)")
    r.add_argument("--smtps-port", type=int, default=None, metavar="PORT",
                   help="also redirect the sandbox's SMTPS (TCP 465) to the sink's implicit-TLS "
                   "port (guard run --smtps-port PORT)")
    r.add_argument("--chain", default="GUARD",
                   help="prefix of the iptables chains guard adds (default: GUARD)")
    r.add_argument("--remove", action="store_true",
                   help="the commands that remove the rules instead")
    r.add_argument("--apply", action="store_true",
                   help="run the commands (as root) instead of printing them")
    r.set_defaults(func=print_rules)


def print_rules(args: argparse.Namespace) -> int:
    gw = iptables.Gateway(args.interface, args.port, args.dns_port, chain=args.chain,
                       smtp_port=args.smtp_port, smtps_port=args.smtps_port)
    cmds = iptables.teardown(gw) if args.remove else iptables.setup(gw)
    if not args.apply:
        if not args.remove:
            dns = (f" --dns-listen 0.0.0.0:{args.dns_port} --dns-answer <address of "
                   f"{args.interface}>") if args.dns_port else ""
            dns += f" --smtp-port {args.smtp_port}" if args.smtp_port is not None else ""
            dns += f" --smtps-port {args.smtps_port}" if args.smtps_port is not None else ""
            print(f"# guard gateway for sandbox traffic arriving on {args.interface}; run guard as")
            print(f"#   guard run --mode transparent --listen-host 0.0.0.0 "
                  f"--listen-port {args.port}{dns}")
            print("# No IP forwarding is needed: guard makes the outbound connections itself.")
        print(iptables.shell(cmds))
        return 0
    if os.geteuid() != 0:
        print("guard net rules --apply needs root (it changes iptables rules)", file=sys.stderr)
        return 2
    for cmd in cmds:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 and not args.remove:
            print(f"guard: `{iptables.shell([cmd])}` failed: {done.stderr.strip()}",
                  file=sys.stderr)
            return 1
    return 0
