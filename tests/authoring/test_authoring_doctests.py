"""The examples in the authoring modules' docstrings are true (pytest does not collect
doctests by default, so they are run here)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "guard.authoring", "guard.authoring.expect", "guard.authoring.coverage",
    "guard.authoring.runner", "guard.rules.paths", "guard.rules.schema", "guard.blocked",
    "guard.synth.discover", "guard.audit.event", "guard.decision",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
