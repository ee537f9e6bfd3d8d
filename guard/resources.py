"""Where the built-in rule packs and fixtures are: in the package when installed,
at the top of the repository when running from a checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(installed: str, checkout: str) -> Path:
    inside = _HERE / installed
    return inside if inside.is_dir() else _HERE.parent / checkout


def packs_dir() -> Path:
    """The built-in rule packs (``rules/`` in the repository)."""
    return _find("_packs", "rules")


def fixtures_dir() -> Path:
    """Templates and seed data (``fixtures/`` in the repository)."""
    return _find("_fixtures", "fixtures")


def templates_dir() -> Path:
    return fixtures_dir() / "templates"
