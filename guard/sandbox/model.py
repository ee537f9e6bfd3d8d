"""A sandbox as a first-class object: id, proven credential, policy, world.

>>> check_id("agent-7")
'agent-7'
>>> valid_id("../etc"), valid_id("a/b"), valid_id("a..b"), valid_id("x" * 129)
(False, False, False, False)
>>> Policy(packs=["acme"]).label().startswith("sha256:"), Policy(name="strict").label()
(True, 'strict')
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guard.errors import SandboxError
from guard.faults import Faults

# Ids name worlds, snapshots, files under --state and Redis keys: one strict form for all,
# so no id can be a path, a glob, a control character or a key-separator trick.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ID_RULE = ("1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, "
           "no '..'")


def valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None and ".." not in value


def check_id(value: object, what: str = "id") -> str:
    """``value`` if it is a valid sandbox or snapshot id, else :class:`SandboxError`."""
    if not valid_id(value):
        shown = repr(value)[:80]
        raise SandboxError("invalid_request", f"invalid {what} {shown}: {ID_RULE}")
    assert isinstance(value, str)
    return value


class PolicyLimits(BaseModel):
    """Limits of one sandbox's world, tighter than guard's own (``--max-world-objects``,
    ``--max-world-bytes``): the smaller of the two applies, so a policy cannot loosen them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_world_objects: int | None = Field(default=None, gt=0, le=10**9, description=(
        "this sandbox's world holds at most N simulated objects"))
    max_world_bytes: int | None = Field(default=None, gt=0, le=2**40, description=(
        "this sandbox's world holds at most N bytes of objects (as JSON)"))


class Policy(BaseModel):
    """What one sandbox may do, decided by its own rules.

    ``packs`` adds packs by name (from the policy packs guard loaded with
    ``--policy-rules``), ``disable_packs`` switches loaded packs off for this
    sandbox, ``webhook_allow`` adds hosts its Stripe webhooks may reach (to those of
    ``--webhook-allow``), ``limits`` tightens its world's size limits, ``strict_world``
    turns the open world off for it
    (:mod:`guard.synth.openworld`). Its seed is where its world starts (``from``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, max_length=128,
                             description="shown in audit events instead of the policy hash")
    packs: tuple[str, ...] = Field(default=(), max_length=64)
    disable_packs: tuple[str, ...] = Field(default=(), max_length=64)
    webhook_allow: tuple[str, ...] = Field(default=(), max_length=64)
    faults: Faults | None = Field(default=None, description="failures to inject into this "
                                  "sandbox's simulated answers, in place of its packs' own")
    limits: PolicyLimits | None = Field(default=None, description="world limits for this "
                                        "sandbox, applied with guard's own (the smaller wins)")
    strict_world: bool = Field(default=False, description="no open world: channels, "
                               "repositories, numbers, senders, domains and prices the agent "
                               "names exist only when the world holds them")

    @field_validator("packs", "disable_packs")
    @classmethod
    def _pack_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for n in names:
            if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", n):
                raise ValueError(f"not a pack name: {n[:70]!r}")
        return names

    @field_validator("webhook_allow")
    @classmethod
    def _hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for h in hosts:
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9.-]{1,253}", h):
                raise ValueError(f"not a host name: {h[:70]!r}")
        return hosts

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_POLICY

    def faults_key(self) -> str | None:
        """The canonical form of ``faults`` (sandboxes with equal faults share a simulator)."""
        if self.faults is None:
            return None
        return json.dumps(self.faults.model_dump(mode="json", exclude_defaults=True),
                          sort_keys=True, separators=(",", ":"))

    def rules_key(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What decides which rule set applies (sandboxes sharing it share one engine)."""
        return (tuple(sorted(set(self.packs))), tuple(sorted(set(self.disable_packs))))

    def label(self) -> str:
        """The name audit events give this policy: its name, else a hash of its content."""
        if self.name:
            return self.name
        if self.is_default:
            return "default"
        canonical = json.dumps(self.model_dump(mode="json", exclude={"name"}), sort_keys=True,
                               separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @classmethod
    def parse(cls, data: object) -> Policy:
        if data is None:
            return DEFAULT_POLICY
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "policy"
            raise SandboxError("invalid_request", f"policy.{where}: {first['msg']}") from None


DEFAULT_POLICY = Policy()


@dataclass
class Sandbox:
    """A registered sandbox. ``token_hash`` is the SHA-256 of its issued token (the token
    itself is shown once, when the sandbox is created); ``client_address`` binds an
    address to it (requests from there are this sandbox without a token)."""

    id: str
    created: float
    policy: Policy = DEFAULT_POLICY
    labels: dict[str, str] = field(default_factory=dict)
    ttl_seconds: float | None = None
    token_hash: str | None = None
    client_address: str | None = None
    source: str | None = None  # what its world started from: snapshot id, seed or sandbox
    parent: str | None = None  # the sandbox it was forked from

    def record(self) -> dict[str, Any]:
        """A JSON form for persistence (never includes the token itself)."""
        return {"id": self.id, "created": self.created,
                "policy": self.policy.model_dump(mode="json", exclude_defaults=True),
                "labels": dict(self.labels), "ttl_seconds": self.ttl_seconds,
                "token_hash": self.token_hash, "client_address": self.client_address,
                "source": self.source, "parent": self.parent}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Sandbox:
        return cls(id=check_id(data["id"]), created=float(data["created"]),
                   policy=Policy.parse(data.get("policy") or {}),
                   labels=dict(data.get("labels") or {}), ttl_seconds=data.get("ttl_seconds"),
                   token_hash=data.get("token_hash"), client_address=data.get("client_address"),
                   source=data.get("source"), parent=data.get("parent"))
