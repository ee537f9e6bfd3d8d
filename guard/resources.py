"""Where guard's built-in data is: the provider packs and their templates (inside the
``guard.providers`` package, checkout or installed alike), and the fixtures (seed data:
``fixtures/`` in a checkout, ``guard/_fixtures`` in an installed wheel).

Nothing here imports provider code: loading a pack's rules must not need its handlers.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

PACK_FILE = "pack.yaml"
TEMPLATES_FOLDER = "templates"


def providers_dir() -> Path:
    """``guard/providers/``: one folder per built-in provider."""
    return _HERE / "providers"


def builtin_packs() -> list[Path]:
    """Every built-in pack, ``guard/providers/<name>/pack.yaml``, by provider name."""
    return sorted(providers_dir().glob(f"*/{PACK_FILE}"))


def builtin_templates() -> dict[str, Path]:
    """Provider name -> its ``templates/`` folder, for the providers that have one."""
    return {d.parent.name: d for d in sorted(providers_dir().glob(f"*/{TEMPLATES_FOLDER}"))
            if d.is_dir()}


def fixtures_dir() -> Path:
    """Seed data (``fixtures/`` in the repository)."""
    inside = _HERE / "_fixtures"
    return inside if inside.is_dir() else _HERE.parent / "fixtures"
