"""`make install` puts a `guard` launcher on the PATH that works from anywhere, also with
the environment sudo gives a command (its secure_path, HOME reset), so `sudo guard jail`
finds it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUDO_PATH = "/usr/local/sbin:{bin}:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's secure_path shape

pytestmark = pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "guard").exists()
                                or shutil.which("make") is None,
                                reason="needs the checkout's .venv (make venv) and make")


def test_make_install_puts_a_launcher_on_the_path_that_sudo_s_environment_finds(tmp_path):
    prefix = tmp_path / "prefix"
    out = subprocess.run(["make", "-s", "install", f"PREFIX={prefix}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    launcher = prefix / "bin" / "guard"
    assert f"installed {launcher}" in out.stdout
    assert os.access(launcher, os.X_OK)
    env = {"PATH": SUDO_PATH.format(bin=prefix / "bin"), "HOME": str(tmp_path / "root"),
           "LANG": "C.UTF-8"}  # what sudo's env_reset leaves
    said = {}
    for argv in (["guard", "--version"], ["guard", "jail", "--help"], ["guard", "check"]):
        ran = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120)
        assert ran.returncode == 0, (argv, ran.stderr)
        said[argv[1]] = ran.stdout
    assert said["--version"].startswith("guard ")
    assert "usage: guard jail [guard run options]" in said["jail"]
    assert said["check"].startswith("ok: ")
    out = subprocess.run(["make", "-s", "uninstall", f"PREFIX={prefix}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not launcher.exists()
