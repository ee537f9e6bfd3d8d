"""Realistic failures on purpose: latency, a share of provider-shaped errors (rate limits,
server errors, timeouts, connection resets) and per-sandbox rate limits, so agents learn to
retry and back off.

A pack (``faults:``) or a rule sets them; the draw for a request comes from a stream of
its own per sandbox, derived from ``--seed``, the sandbox and the request's number, so
the same seed and the same requests fail the same way (without moving the ids the world
hands out). Rate limits count real time: they answer as the provider does when a sandbox
sends more than ``requests`` in ``per_seconds``.

>>> f = Faults.model_validate({"errors": [{"share": 1.0, "kind": "server_error"}]})
>>> draw(f, random.Random(1)).kind
'server_error'
>>> draw(Faults.model_validate({"latency": {"ms": 250}}), random.Random(1)).delay_ms
250.0
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["rate_limit", "server_error", "timeout", "reset"]
MAX_DELAY_MS = 30_000.0  # a fault never holds a connection longer than this


class Strict(BaseModel):  # as guard.rules.base.Strict (that package imports this module)
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Latency(Strict):
    """Added delay: fixed (``ms``), uniform (``min_ms``..``max_ms``) or log-normal
    (``median_ms`` with a long tail up to ``p99_ms``)."""

    ms: float | None = Field(None, ge=0, le=MAX_DELAY_MS, description="fixed delay")
    min_ms: float | None = Field(None, ge=0, le=MAX_DELAY_MS, description="uniform: lowest")
    max_ms: float | None = Field(None, ge=0, le=MAX_DELAY_MS, description="uniform: highest")
    median_ms: float | None = Field(None, gt=0, le=MAX_DELAY_MS,
                                    description="log-normal: the median delay")
    p99_ms: float | None = Field(None, gt=0, le=MAX_DELAY_MS,
                                 description="log-normal: 99 of 100 delays are below this")

    @model_validator(mode="after")
    def _one_kind(self) -> Latency:
        kinds = [self.ms is not None, self.min_ms is not None or self.max_ms is not None,
                 self.median_ms is not None or self.p99_ms is not None]
        if sum(kinds) != 1:
            raise ValueError("give one of: ms; min_ms and max_ms; median_ms and p99_ms")
        if kinds[1] and (self.min_ms is None or self.max_ms is None or
                         self.min_ms > self.max_ms):
            raise ValueError("uniform latency needs min_ms <= max_ms")
        if kinds[2] and (self.median_ms is None or self.p99_ms is None or
                         self.p99_ms < self.median_ms):
            raise ValueError("log-normal latency needs median_ms <= p99_ms")
        return self

    def draw(self, rng: random.Random) -> float:
        if self.ms is not None:
            return self.ms
        if self.min_ms is not None and self.max_ms is not None:
            return rng.uniform(self.min_ms, self.max_ms)
        assert self.median_ms is not None and self.p99_ms is not None
        sigma = math.log(self.p99_ms / self.median_ms) / 2.326  # z of the 99th percentile
        return min(MAX_DELAY_MS, rng.lognormvariate(math.log(self.median_ms), sigma))


class ErrorShare(Strict):
    """A share of requests that fail this way."""

    share: float = Field(gt=0, le=1, description="fraction of requests, e.g. 0.05")
    kind: Kind = Field(description="rate_limit: the provider's 429; server_error: its 500; "
                       "timeout: no answer until the connection is closed; reset: the "
                       "connection is reset")
    after_ms: float = Field(10_000, ge=0, le=MAX_DELAY_MS,
                            description="timeout: how long guard holds the request first")


class RateLimit(Strict):
    """Per sandbox: at most ``requests`` in any ``per_seconds`` (a token bucket)."""

    requests: int = Field(ge=1, description="requests allowed per window")
    per_seconds: float = Field(gt=0, le=3600, description="window length in seconds")


class Faults(Strict):
    """Failures to inject into simulated answers (see docs/faults.md)."""

    latency: Latency | None = Field(None, description="delay every answer")
    errors: list[ErrorShare] = Field(default_factory=list,
                                     description="shares of requests that fail")
    rate_limit: RateLimit | None = Field(None, description="per-sandbox rate limit")

    @model_validator(mode="after")
    def _shares(self) -> Faults:
        if sum(e.share for e in self.errors) > 1:
            raise ValueError("the error shares add up to more than 1")
        return self


@dataclass(frozen=True)
class Fault:
    """What was injected into one request (named in its audit event)."""

    kind: str | None  # rate_limit | server_error | timeout | reset | None (latency only)
    delay_ms: float = 0.0
    reason: str = ""  # "share" (drawn) or "rate limit" (over the sandbox's limit)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"delay_ms": round(self.delay_ms, 1)}
        if self.kind is not None:
            out["kind"] = self.kind
            out["reason"] = self.reason
        return out


def draw(faults: Faults, rng: random.Random) -> Fault | None:
    """The fault for one request, drawn from ``rng`` (no rate limit here)."""
    delay = faults.latency.draw(rng) if faults.latency is not None else 0.0
    roll = rng.random()
    for e in faults.errors:
        if roll < e.share:
            return Fault(e.kind, e.after_ms if e.kind == "timeout" else delay, "share")
        roll -= e.share
    return Fault(None, delay) if delay else None


class Injector:
    """Draws faults for requests: one seeded stream per sandbox, rate-limit buckets per
    sandbox and pack. Safe to share between threads."""

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self._counts: dict[str, int] = {}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # tokens, last time
        self._lock = threading.Lock()

    def fault(self, faults: Faults, sandbox: str, pack: str,
              now: float | None = None) -> Fault | None:
        with self._lock:
            n = self._counts.get(sandbox, 0) + 1
            self._counts[sandbox] = n
            if faults.rate_limit is not None and not self._take(faults.rate_limit, sandbox,
                                                                pack, now):
                return Fault("rate_limit", 0.0, "rate limit")
        return draw(faults, self._rng(sandbox, n))

    def _rng(self, sandbox: str, n: int) -> random.Random:
        if self.seed is None:
            return random.Random(secrets.randbits(64))
        digest = hashlib.sha256(f"faults:{self.seed}:{sandbox}:{n}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _take(self, limit: RateLimit, sandbox: str, pack: str, now: float | None) -> bool:
        t = time.monotonic() if now is None else now
        rate = limit.requests / limit.per_seconds
        tokens, last = self._buckets.get((sandbox, pack), (float(limit.requests), t))
        tokens = min(float(limit.requests), tokens + (t - last) * rate)
        if tokens < 1:
            self._buckets[(sandbox, pack)] = (tokens, t)
            return False
        self._buckets[(sandbox, pack)] = (tokens - 1, t)
        return True
