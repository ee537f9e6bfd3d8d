"""What guard's banner says about Node.js is true of the Node installed here: fetch()
ignores HTTPS_PROXY (it goes direct: with internet access, to the real service), and the
setting the banner gives for this Node's version sends it through guard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")
# .invalid never resolves (RFC 6761): a fetch that goes around guard cannot reach anything
URL = "https://node-fetch.guard-test.invalid/v1/ping"
FETCH = ("fetch(process.argv[1]).then(r => console.log(JSON.stringify({status: r.status, "
         "rule: r.headers.get('x-guard-rule')}))).catch(e => console.log(JSON.stringify("
         "{error: String(e.cause && e.cause.code || e)})))")


def has_env_proxy() -> bool:
    """NODE_USE_ENV_PROXY: Node 24+, and 22.21+."""
    out = subprocess.run([NODE or "node", "--version"], capture_output=True, text=True)
    major, minor = (int(x) for x in out.stdout.strip().lstrip("v").split(".")[:2])
    return major >= 24 or (major == 22 and minor >= 21)


@pytest.fixture(scope="module")
def undici(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """undici from the npm registry, for a Node without NODE_USE_ENV_PROXY."""
    where = tmp_path_factory.mktemp("node")
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    out = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(where),
                          "undici@6"], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        pytest.skip(f"cannot install undici from the npm registry: {out.stderr[-300:]}")
    return where


def fetch(guard, *, script: str = FETCH, **env: str) -> dict[str, object]:
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environment.update(HTTPS_PROXY=guard.url, NODE_EXTRA_CA_CERTS=guard.ca, **env)
    out = subprocess.run([NODE or "node", "-e", script, URL], env=environment,
                         capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_node_fetch_ignores_https_proxy_and_goes_direct(guard_proxy):
    g = guard_proxy()
    assert "error" in fetch(g)  # it looked the name up itself; guard never saw it
    log = Path(str(g.cfg.audit))
    assert not (log.exists() and "guard-test.invalid" in log.read_text())


def test_the_setting_the_banner_gives_for_this_node_sends_fetch_through_guard(
        guard_proxy, request):
    g = guard_proxy()
    if has_env_proxy():
        answer = fetch(g, NODE_USE_ENV_PROXY="1")
    else:
        where = request.getfixturevalue("undici")
        script = ("const {setGlobalDispatcher, EnvHttpProxyAgent} = require('undici');"
                  "setGlobalDispatcher(new EnvHttpProxyAgent());" + FETCH)
        answer = fetch(g, script=script, NODE_PATH=str(where / "node_modules"))
    assert answer == {"status": 403, "rule": "guard.default-deny"}
