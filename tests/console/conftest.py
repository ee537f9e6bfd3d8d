"""A guard with the admin listener (console, metrics, probes) per test module, a loopback
upstream it may reach (``docs.test``), and one headless Chromium for the whole package.

The guard is per module because mitmproxy keeps per-process globals: a second guard
started while one runs takes over its hooks, so the tests that start guards of their own
(test_health.py) run in a module with no shared guard.

Sandboxes are named by the X-Guard-Sandbox header with derived tokens, so every test
keeps to sandboxes of its own (:func:`tests.console.console_helpers.sandbox`)."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.options import Options
from guard.proxy.embedded import RunningGuard
from tests.sandboxes import KEY_FILE
from tests.upstream import Upstream

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def allow_rules(directory: Path) -> Path:
    path = directory / "console-rules.yaml"
    path.write_text(textwrap.dedent("""
        pack: console-test
        rules:
          - id: docs.allowed
            hosts: [docs.test]
            action: allow
            allow_private: true
            ports: ["1024-65535"]  # the test upstream's ephemeral port
          - id: shop.orders.create
            hosts: [shop.test]
            match: {method: POST, path: /orders}
            action: simulate
            respond:
              status: 201
              body: {"object": "order", "ok": true}
          - id: shop.blocked
            hosts: [shop.test]
            match: {path: "/admin/**"}
            action: block
            reason: the shop's admin pages are off limits
    """))
    return path


@pytest.fixture(scope="package")
def upstream_site() -> Iterator[Upstream]:
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def console_guard(confdir: Path, tmp_path_factory: pytest.TempPathFactory,
                  upstream_site: Upstream) -> Iterator[RunningGuard]:
    d = tmp_path_factory.mktemp("console")
    cfg = Options(listen_port=0, confdir=confdir, quiet=True, audit=d / "audit.jsonl",
                  sandbox_from="header", sandbox_key=KEY_FILE, seed=5,
                  admin_listen=("127.0.0.1", 0), rules=[str(allow_rules(d))])
    g = RunningGuard(cfg).__enter__()

    async def resolve(name: str, port: int) -> list[str]:
        return ["127.0.0.1"] if name == "docs.test" else []

    g.egress.resolve = resolve
    yield g
    g.stop()


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's chromium, headless, through chromium-driver, with a profile of its own."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver must be installed (.ci/run does)")
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    # the browser reaches only the admin listener on loopback: no proxy, ever
    options.add_argument("--no-proxy-server")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
