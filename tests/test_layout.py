"""The tests mirror the package: each of guard's packages has a test package of the same
name, and each provider has its own test module, so a change has one obvious test home."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUARD = ROOT / "guard"
TESTS = ROOT / "tests"


def packages() -> list[str]:
    return sorted(d.name for d in GUARD.iterdir() if (d / "__init__.py").is_file())


def test_every_guard_package_has_a_test_package_with_tests_in_it():
    missing = [p for p in packages() if not list((TESTS / p).glob("test_*.py"))]
    assert packages() and missing == [], f"guard packages without tests/<name>/test_*.py: {missing}"


def test_every_provider_has_its_own_tests():
    providers = sorted(d.name for d in (GUARD / "providers").iterdir()
                       if (d / "__init__.py").is_file())
    here = TESTS / "providers"
    # Stripe's tests are a package (tests/providers/stripe_api: not `stripe`, which would
    # shadow the SDK); the others one module each, the OpenAPI-built packs in one module.
    openapi_packs = (here / "test_openapi_packs.py").read_text()
    missing = [p for p in providers
               if not (here / f"test_{p}.py").is_file()
               and not list((here / f"{p}_api").glob("test_*.py"))
               and f"{p}" not in openapi_packs]
    assert len(providers) > 5 and missing == [], f"providers without tests: {missing}"


def test_no_test_module_is_left_at_a_path_that_names_no_source():
    # tests/test_<x>.py at the top level is for guard/<x>.py, or for a whole-product test
    # (install, packaging, deployment files, the Node client, readiness, pass-through).
    whole_product = {"deploy", "install", "packaging", "node_proxy", "ready", "passthrough",
                     "layout", "import_graph", "allow_rules"}
    strays = [t.name for t in TESTS.glob("test_*.py")
              if t.stem[5:] not in whole_product and not (GUARD / f"{t.stem[5:]}.py").is_file()]
    assert strays == [], f"top-level tests naming no module in guard/: {strays}"
