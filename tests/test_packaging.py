"""The wheel ships everything guard needs outside a checkout: every provider's pack and
templates, the seed fixtures, the report template. Built from a copy of the sources, then
run from the unpacked wheel (so nothing can come from the checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["guard", "fixtures", "docs", "rules", "pyproject.toml", "setup.py", "MANIFEST.in",
           "README.md"]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(dist), str(src)], check=True, cwd=src, timeout=240)
    (wheel,) = dist.glob("guard-*.whl")
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


def run_guard(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, "-m", "guard", *args], capture_output=True,
                          text=True, env=env, cwd=site, timeout=120)


def test_the_wheel_holds_every_pack_template_and_seed(unpacked):
    shipped = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
    for path in (ROOT / "guard").rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and "__pycache__" not in rel:
            assert rel in shipped, rel
    for path in (ROOT / "fixtures").rglob("*"):
        if path.is_file():
            assert "guard/_fixtures/" + path.relative_to(ROOT / "fixtures").as_posix() in shipped


def test_guard_check_and_guard_test_run_from_the_wheel_alone(unpacked):
    probe = subprocess.run([sys.executable, "-c", "import guard; print(guard.__file__)"],
                           env=dict(os.environ, PYTHONPATH=str(unpacked)), cwd=unpacked,
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == str(unpacked / "guard" / "__init__.py")
    check = run_guard(unpacked, "check")
    assert check.returncode == 0, check.stderr
    listed = [line.split(": pack ")[0].strip() for line in check.stdout.splitlines()[1:]]
    assert listed and all(p.startswith(str(unpacked / "guard" / "providers")) for p in listed)
    assert all(Path(p).is_file() for p in listed)
    cases = run_guard(unpacked, "test")
    assert cases.returncode == 0, cases.stdout + cases.stderr
    assert cases.stdout.splitlines()[-1].endswith(" 0 failed")
