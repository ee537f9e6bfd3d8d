"""Run stripe-python's own test suite against guard in place of stripe-mock.

    .venv/bin/python tools/stripe_python_suite.py --checkout DIR --python PY [-n 2] [-k EXPR]

DIR is a checkout of stripe-python (not part of this repository: bring one yourself, at a
version whose tests use stripe-mock on STRIPE_MOCK_PORT); PY is an interpreter with its
test requirements (``pip install -r DIR/deps/test-requirements.txt -e DIR``). The script
starts guard (this checkout's, with the interpreter running the script) as ``guard run
--mode reverse:https://api.stripe.com@PORT --seed 1 --sandbox-from header`` with an admin
listener on free loopback ports, and runs the suite with ``STRIPE_MOCK_PORT`` pointing at
it. A small pytest plugin gives every test a fresh sandbox: before the test it creates one
through the control plane from the ``stripe-placeholders`` seed (the ids the tests assume,
tools/make_stripe_placeholder_seed.py), the SDK sends that sandbox's token in
``X-Guard-Sandbox`` on every request, and the sandbox is deleted after the test. It counts
the tests that reach the server (those using the ``http_client_mock`` fixture, as
stripe-python's own ``--nomock`` does) that pass, and prints the figures for
docs/stripe.md (``--failures`` lists the failing ones).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = "stripe-placeholders"
# Loaded into every pytest process (-p); runs in the suite's interpreter, which has
# requests (stripe-python's conftest uses it) but not guard.
PLUGIN = """
import json, os
import pytest, requests
import stripe._api_requestor as _requestor

_ADMIN = os.environ["GUARD_SUITE_ADMIN"]
_AUTH = {"Authorization": "Bearer " + os.environ["GUARD_SUITE_ADMIN_TOKEN"]}
_current = {}
_seen = {}
_original = _requestor._APIRequestor.request_headers


def _headers(self, *args, **kwargs):
    headers = _original(self, *args, **kwargs)
    if "token" in _current:
        headers["X-Guard-Sandbox"] = _current["token"]
    return headers


_requestor._APIRequestor.request_headers = _headers


def pytest_collection_modifyitems(items):
    for item in items:
        _seen[item.nodeid] = "http_client_mock" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    r = requests.post(_ADMIN + "/v1/sandboxes", json={"from": os.environ["GUARD_SUITE_SEED"]},
                      headers=_AUTH, timeout=60)
    r.raise_for_status()
    body = r.json()
    _current.update(id=body["id"], token=body["token"])


def pytest_runtest_teardown(item):
    sandbox = _current.pop("id", None)
    _current.pop("token", None)
    if sandbox:
        requests.delete(_ADMIN + "/v1/sandboxes/" + sandbox, headers=_AUTH, timeout=60)


def pytest_sessionfinish(session):
    path = os.environ["GUARD_SUITE_FIXTURES"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"{path}.{worker}", "w") as f:
        json.dump(_seen, f)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.5)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--python", required=True, help="interpreter with the suite's deps")
    ap.add_argument("-n", default="2", help="pytest-xdist workers (default 2)")
    ap.add_argument("--failures", action="store_true", help="list failing tests")
    ap.add_argument("-k", dest="keyword", default=None,
                    help="only tests matching this pytest -k expression (a sample)")
    ap.add_argument("tests", nargs="*", default=["tests"], help="test paths (default: tests)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="guard-stripe-suite-"))
    port, admin_port = free_port(), free_port()
    token = secrets.token_hex(16)
    (work / "admin-token").write_text(token + "\n")
    guard = subprocess.Popen(
        [sys.executable, "-m", "guard", "run", "--mode",
         f"reverse:https://api.stripe.com@{port}", "--listen-port", "0", "--seed", "1",
         "--sandbox-from", "header", "--admin-listen", f"127.0.0.1:{admin_port}",
         "--admin-token-file", str(work / "admin-token"), "--state", "off",
         "--confdir", str(work / "conf"), "--audit", str(work / "audit.jsonl"),
         "--no-reload", "-q"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=open(work / "guard.log", "wb"))  # noqa: SIM115 (closed with the process)
    try:
        if not wait_for(port, guard) or not wait_for(admin_port, guard):
            print(f"guard did not start (see {work / 'guard.log'})", file=sys.stderr)
            return 1
        (work / "guard_suite_plugin.py").write_text(PLUGIN)
        env = {**os.environ, "STRIPE_MOCK_PORT": str(port), "STRIPE_MOCK_HOST": "127.0.0.1",
               "GUARD_SUITE_FIXTURES": str(work / "fixtures"), "GUARD_SUITE_SEED": SEED,
               "GUARD_SUITE_ADMIN": f"http://127.0.0.1:{admin_port}",
               "GUARD_SUITE_ADMIN_TOKEN": token, "PYTHONPATH": str(work)}
        subprocess.run([args.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "guard_suite_plugin", "-o", "addopts=", "-n", args.n,
                        *args.tests, *(["-k", args.keyword] if args.keyword else []),
                        f"--junitxml={work / 'junit.xml'}"], cwd=args.checkout, env=env,
                       stdout=open(work / "pytest.log", "wb"),  # noqa: SIM115
                       stderr=subprocess.STDOUT, check=False)
    finally:
        guard.terminate()
        guard.wait(timeout=30)
    server: dict[str, bool] = {}
    for path in work.glob("fixtures.*"):
        server.update(json.loads(path.read_text()))
    uses = {_junit_key(nodeid): hit for nodeid, hit in server.items()}
    results: dict[tuple[str, str], bool] = {}
    for case in ET.parse(work / "junit.xml").iter("testcase"):
        failed = any(child.tag in ("failure", "error") for child in case)
        skipped = any(child.tag == "skipped" for child in case)
        if not skipped:
            results[(case.get("classname", ""), case.get("name", ""))] = not failed
    hitting = {k: v for k, v in results.items() if uses.get(k)}
    passed = sum(hitting.values())
    print(f"stripe-python tests that reach the server: {len(hitting)}; pass with guard in "
          f"place of stripe-mock: {passed} ({100 * passed / max(1, len(hitting)):.1f}%)")
    print(f"all tests run: {len(results)}; pass: {sum(results.values())}")
    print(f"(logs, junit report and audit log in {work})")
    if args.failures:
        for (cls, name), ok in sorted(hitting.items()):
            if not ok:
                print(f"  FAIL {cls}::{name}")
    return 0


def _junit_key(nodeid: str) -> tuple[str, str]:
    """``tests/a/test_b.py::TestC::test_d[x]`` -> (``tests.a.test_b.TestC``, ``test_d[x]``),
    as pytest's junit report names a test."""
    parts = nodeid.split("::")
    module = parts[0].removesuffix(".py").replace("/", ".")
    return ".".join([module, *parts[1:-1]]), parts[-1]


if __name__ == "__main__":
    raise SystemExit(main())
