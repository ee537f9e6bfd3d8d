"""Run the ``tests:`` cases of the email and SaaS packs through the engine and simulator.

Each pack's cases run in order against one fresh world (sandbox ``guard-test``), the
format fixed in the project brief; ``guard test`` runs the same cases for rule authors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from guard.engine import Engine
from guard.request import Request, dig
from guard.rules import load_rules
from guard.synth.simulator import Simulator
from guard.world.store import WorldStore

RULES = Path(__file__).resolve().parents[2] / "rules"
PACKS = ["sendgrid", "mailgun", "postmark", "ses", "resend", "twilio", "slack", "github"]


def build(spec: dict[str, Any]) -> Request:
    headers = dict(spec.get("headers") or {})
    body: bytes | str = b""
    if "json" in spec:
        body = json.dumps(spec["json"])
        headers.setdefault("Content-Type", "application/json")
    elif "form" in spec:
        body = urlencode(spec["form"], doseq=True)
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif "body" in spec:
        body = spec["body"]
    return Request.build(spec.get("method", "GET"), spec["url"], headers=headers, body=body,
                         sandbox="guard-test")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_rules([], builtin=True))


@pytest.mark.parametrize("pack", [p for p in PACKS if (RULES / f"{p}.yaml").exists()])
def test_every_case_of_the_pack_holds(pack: str, engine: Engine) -> None:
    cases = yaml.safe_load((RULES / f"{pack}.yaml").read_text())["tests"]
    assert cases, f"{pack} has no test cases"
    sim = Simulator(WorldStore(seed=1))
    for case in cases:
        req = build(case["request"])
        want = case["expect"]
        decision = engine.decide(req)
        where = f"{pack}: {case['name']}"
        assert decision.action == want.get("action", decision.action), where
        assert decision.rule_id == want.get("rule", decision.rule_id), where
        if decision.action != "simulate":
            continue
        response = sim.respond(decision, req).response
        assert response.status == want.get("status", response.status), (where, response.body)
        for path, value in (want.get("body") or {}).items():
            data = json.loads(response.body)
            found, got = dig(data, path)
            assert found and got == value, (where, path, got, data)
