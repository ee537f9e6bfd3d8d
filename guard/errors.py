"""guard's error tree. Every error guard raises on purpose is one of these::

    GuardError
     ├── RuleError            a rule file is invalid; carries every problem found
 ├── OptionsError         a run option is invalid (flag, GUARD_* variable or config file)
     ├── TemplateError        a template cannot be loaded or rendered (names the rule)
     ├── HandlerError         a provider handler failed (names the rule)
     ├── WorldError           the per-sandbox state store failed
     │    ├── NoSuchWorld, NoSuchSnapshot, WorldExists   control-plane lookups
     │    └── StoreUnavailable  the shared store (Redis) is down: fail closed (503)
     ├── AuditError           the audit log cannot be written (traffic stops)
     ├── NetError             a network setup command failed (jail, gateway, CA install)
     └── SandboxError         a control-plane request failed (kind: not_found, conflict, ...)
"""

from __future__ import annotations

from dataclasses import dataclass


class GuardError(Exception):
    """Base of every error guard raises deliberately."""


@dataclass(frozen=True)
class Problem:
    """One problem in a rule file, located by 1-based line and column."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class RuleError(GuardError):
    """Rule files failed to load. ``problems`` lists all of them, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


class OptionsError(GuardError):
    """Run options failed to load. ``problems`` names the source of each bad value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class TemplateError(GuardError):
    """A template failed to compile or render; ``rule_id`` names the rule that used it."""

    def __init__(self, rule_id: str, message: str) -> None:
        self.rule_id = rule_id
        super().__init__(f"rule {rule_id}: {message}")


class HandlerError(GuardError):
    """A provider handler raised; ``rule_id`` names the rule that called it."""

    def __init__(self, rule_id: str, message: str) -> None:
        self.rule_id = rule_id
        super().__init__(f"rule {rule_id}: {message}")


class WorldError(GuardError):
    """The world store could not be read or written."""


class NoSuchWorld(WorldError):
    """No world by that sandbox name."""


class NoSuchSnapshot(WorldError):
    """No snapshot by that id."""


class WorldExists(WorldError):
    """A world by that sandbox name exists already."""


class StoreUnavailable(WorldError):
    """The shared store (Redis) cannot be reached: the request fails closed (503)."""


class AuditError(GuardError):
    """The audit log could not be written. guard stops traffic rather than lose records."""


class NetError(GuardError):
    """Setting up a sandbox network or the CA trust failed; the message names the command."""


class SandboxError(GuardError):
    """A control-plane request about sandboxes or snapshots failed.

    ``kind`` is the machine-readable type the admin API answers with
    (``not_found``, ``conflict``, ``invalid_request``); ``status`` its HTTP status.
    """

    STATUS = {"invalid_request": 400, "unauthorized": 401, "not_found": 404,
              "conflict": 409, "payload_too_large": 413, "unsupported_media_type": 415}

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.status = self.STATUS.get(kind, 400)
        super().__init__(message)
