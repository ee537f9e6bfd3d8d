"""``guard ca``: where guard's CA is, and how clients come to trust it."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from guard import ca as trust
from guard import options
from guard.errors import NetError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ca", help="guard's CA certificate and client trust",
                       description="Show guard's CA and make clients trust it. The CA is "
                       "created in the confdir if it does not exist yet.")
    options.add_flags(p, only=("confdir",))  # the same --confdir, GUARD_CONFDIR and file
    ca = p.add_subparsers(dest="ca_command", metavar="SUBCOMMAND", required=True)
    ca.add_parser("path", help="print the CA certificate's path").set_defaults(func=path)
    env = ca.add_parser("env", help="print shell export lines for common clients",
                        description="Write a bundle (system CAs + guard's CA) and print "
                        "`export` lines pointing every common client at it: "
                        "eval \"$(guard ca env)\"")
    env.add_argument("--bundle", type=Path, default=None, metavar="PATH",
                     help="where to write the bundle (default: CONFDIR/guard-ca-bundle.pem)")
    env.set_defaults(func=environment)
    bundle = ca.add_parser("bundle", help="write system CAs + guard's CA to OUT")
    bundle.add_argument("out", type=Path, metavar="OUT", help="where to write the bundle")
    bundle.add_argument("--base", type=Path, default=None, metavar="PEM",
                        help="start from this bundle instead of the system's")
    bundle.set_defaults(func=write_bundle)
    install = ca.add_parser(
        "install", help="add guard's CA to the system store and Python environments",
        description="Add guard's CA to the operating system's store (update-ca-certificates "
        "or update-ca-trust) and, for each --python, to certifi's cacert.pem and the stripe "
        "package's data/ca-certificates.crt in that environment. Safe to run again.")
    install.add_argument("--python", action="append", default=[], metavar="PATH",
                         help="a Python interpreter whose packages' bundles get the CA "
                         "(repeatable)")
    install.add_argument("--no-system", dest="system", action="store_false",
                         help="leave the operating system's store alone")
    install.set_defaults(func=install_ca)


def _ca(args: argparse.Namespace) -> Path:
    from guard.proxy.certs import ensure_ca

    return ensure_ca(options.from_args(args).confdir)


def path(args: argparse.Namespace) -> int:
    print(_ca(args))
    return 0


def environment(args: argparse.Namespace) -> int:
    ca = _ca(args)
    bundle = trust.write_bundle(args.bundle or ca.parent / "guard-ca-bundle.pem", ca)
    for name, value in trust.environment(ca, bundle).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def write_bundle(args: argparse.Namespace) -> int:
    out = trust.write_bundle(args.out, _ca(args), args.base)
    print(out)
    return 0


def install_ca(args: argparse.Namespace) -> int:
    ca = _ca(args)
    if not args.system and not args.python:
        print("guard ca install: nothing to do (--no-system and no --python)", file=sys.stderr)
        return 2
    done: list[trust.Installed] = []
    try:
        if args.system:
            if os.geteuid() != 0:
                print("guard ca install needs root for the system store (or use --no-system)",
                      file=sys.stderr)
                return 2
            done.append(trust.install_system(ca))
        for python in args.python:
            found = trust.install_python(ca, python)
            if not found:
                print(f"guard: {python}: neither certifi nor stripe is installed there",
                      file=sys.stderr)
            done += found
    except NetError as e:
        print(f"guard: {e}", file=sys.stderr)
        return 1
    for item in done:
        print(f"{item.where}: {item.path} ({'added' if item.changed else 'already there'})")
    return 0
