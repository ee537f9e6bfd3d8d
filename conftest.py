"""Doctests run for every module of the guard package (``--doctest-modules`` in
pyproject.toml), not for the test suite's own files: those are tests already, and
their conftest.py files share a name that doctest collection would import twice."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule

TESTS = Path(__file__).resolve().parent / "tests"


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Generator[None]:
    outcome = yield
    if file_path.is_relative_to(TESTS):
        outcome.force_result([c for c in outcome.get_result()
                              if not isinstance(c, DoctestModule)])
