"""The world store a test session runs on (``pytest --store redis``), for guards that tests
build in code: the ``_world_store`` fixture in conftest.py puts it in GUARD_STORE, which
``guard run`` reads; options built in code read no environment, so they ask here."""

from __future__ import annotations

import os


def session_store() -> str | None:
    return os.environ.get("GUARD_STORE") or None
