"""Every guard help text is written for a terminal: each subcommand says what it does,
each argument what it takes, and no docstring markup (RST double backticks) shows."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from guard.cli import parser


def commands(p: argparse.ArgumentParser, name: str = "guard"
             ) -> Iterator[tuple[str, argparse.ArgumentParser, str | None]]:
    yield name, p, None
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
            for sub, sp in action.choices.items():
                for found in commands(sp, f"{name} {sub}"):
                    yield found if found[0] != f"{name} {sub}" else (found[0], sp,
                                                                      helps.get(sub))


ALL = list(commands(parser()))


@pytest.mark.parametrize(("name", "p", "summary"), ALL, ids=[c[0] for c in ALL])
def test_every_command_and_argument_is_described(name, p, summary):
    if name != "guard":
        assert summary, f"{name} has no one-line help in its parent's list"
    for action in p._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
    assert "``" not in p.format_help(), f"{name} --help shows RST backticks"


def test_the_real_help_of_replay_and_audit_reads_plainly():
    for args in (["replay", "--help"], ["audit", "--help"], ["ready", "--help"]):
        out = subprocess.run([sys.executable, "-m", "guard", *args], capture_output=True,
                             text=True, check=True).stdout
        assert "``" not in out and out.startswith(f"usage: guard {args[0]}")
