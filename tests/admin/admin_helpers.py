"""Helpers shared by the admin tests (a module of its own: ``conftest`` is not importable by
name when several test folders have one)."""

from __future__ import annotations

import itertools

_ids = itertools.count(1)


def new_id(prefix: str = "t") -> str:
    """A sandbox or snapshot id no other test in the session uses."""
    return f"{prefix}-{next(_ids)}"
