"""The agent-style example script runs start to end through guard, in its own process,
configured only by the environment an operator gives a sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "stripe_agent.py"


def test_the_agent_script_runs_every_everyday_flow_through_guard(guard_proxy, upstream):
    g = guard_proxy()
    env = dict(os.environ, HTTPS_PROXY=g.url, GUARD_CA=g.ca, STRIPE_API_KEY="sk_test_agent")
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("all flows done")
    assert "declined: card_declined insufficient_funds" in done.stdout
    assert g.upstream_attempts == [] and upstream.connections == 0
