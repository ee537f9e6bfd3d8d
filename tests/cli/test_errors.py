"""Mistakes people make on the command line, answered in guard's own words: the real
command in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def guard(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"HOME": str(home)} if home else {})}
    return subprocess.run([sys.executable, "-m", "guard", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


@pytest.mark.parametrize(("args", "says"), [
    (("run", "--port", "9000"), "guard run has no option --port; did you mean --listen-port?"),
    (("run", "-p", "9000"), "guard run has no option -p; did you mean --listen-port?"),
    (("run", "--lisen-host=0.0.0.0"), "guard run has no option --lisen-host; did you mean "
                                      "--listen-host"),
    (("audit", "list", "--hots", "x"), "guard audit list has no option --hots; did you mean "
                                       "--host?"),
    (("check", "--no-bultin"), "guard check has no option --no-bultin; did you mean "
                               "--no-builtin?"),
    (("explain", "GET", "https://x.test/", "surplus"), "guard explain takes no argument "
                                                       "'surplus' here"),
])
def test_an_unknown_flag_names_the_command_and_the_flag_that_was_meant(args, says):
    proc = guard(*args)
    assert proc.returncode == 2
    assert says in proc.stderr
    assert "--help describes every option" in proc.stderr
    assert "unrecognized arguments" not in proc.stderr
    assert "usage: guard [-h]" not in proc.stderr  # not the top-level usage


def test_the_value_after_an_unknown_flag_is_not_reported_again():
    proc = guard("run", "--port", "9000")
    assert "'9000'" not in proc.stderr


def test_a_port_in_use_is_said_in_guards_words(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = guard("run", "--listen-port", str(port), "--confdir", str(tmp_path),
                     "--audit", "off", "--state", "off")
    assert proc.returncode == 1
    assert f"guard: not starting: 127.0.0.1:{port} is already in use" in proc.stderr
    assert "--listen-port PORT" in proc.stderr
    assert "--mode regular@" not in proc.stderr + proc.stdout


def test_an_address_that_is_not_this_machines_is_said_plainly(tmp_path):
    proc = guard("run", "--listen-host", "192.0.2.1", "--listen-port", "18999",
                 "--confdir", str(tmp_path), "--audit", "off", "--state", "off")
    assert proc.returncode == 1
    assert "192.0.2.1 is not an address of this machine (--listen-host)" in proc.stderr
