"""The per-sandbox world: objects created by simulated calls, kept for later calls."""

from guard.world.store import Change, World, WorldStore

__all__ = ["Change", "World", "WorldStore"]
