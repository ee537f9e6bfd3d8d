"""The README's end-to-end orchestrator example (examples/orchestrator.py) runs as written
against a real guard: a sandbox from the Stripe catalogue seed, an agent, three forks,
three variants, their diffs compared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "orchestrator.py"


def test_the_orchestrator_example_runs_and_its_variants_diverge(admin_guard):
    env = {**os.environ, "GUARD_ADMIN": admin_guard.admin_url,
           "GUARD_ADMIN_TOKEN": admin_guard.admin_token, "GUARD_PROXY": admin_guard.url,
           "GUARD_CA": admin_guard.ca, "PYTHONPATH": str(SCRIPT.parents[1])}
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "variants diverged as expected" in out.stdout
    text = out.stdout
    assert "variant refund:" in text and "stripe.refunds" in text.split("variant downgrade")[0]
    assert "'active' -> 'canceled'" in text.split("variant cancel:")[1]
