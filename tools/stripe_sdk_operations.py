"""The Stripe operations the installed ``stripe`` SDK calls that guard's vendored spec
(Stripe's spec3 at API version 2024-04-10) lacks, and which of them the vendored supplement
derived from the SDK (``sdk3.json.gz``, tools/stripe_sdk_supplement.py) answers; the rest
guard answers 404 for, listed with the reason.

The SDK's generated services name every call as ``self._request("post", "/v1/...")``; this
reads them with ``ast`` (nothing of the SDK is imported or run), compares them with the
spec's paths, and prints the operations the spec lacks, grouped by resource family, with
the counts. ``--markdown`` prints the list as docs/stripe.md keeps it.

    .venv/bin/python tools/stripe_sdk_operations.py [--markdown]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import stripe

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "guard" / "providers" / "stripe" / "spec" / "spec3.json.gz"
SUPPLEMENT = SPEC.with_name("sdk3.json.gz")


def sdk_operations(package: Path) -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every ``_request``/``_request_async`` in the services."""
    found: set[tuple[str, str]] = set()
    for source in package.rglob("*_service.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("_request", "_request_async", "_request_stream",
                                           "_request_stream_async")
                    and len(node.args) >= 2):
                continue
            method, path = node.args[0], node.args[1]
            if isinstance(path, ast.Call) and isinstance(path.func, ast.Attribute) \
                    and path.func.attr == "format":
                path = path.func.value
            if isinstance(method, ast.Constant) and isinstance(path, ast.Constant) \
                    and isinstance(path.value, str) and path.value.startswith("/v"):
                found.add((str(method.value).upper(), path.value))
    return found


def spec_operations() -> set[tuple[str, str]]:
    spec = json.loads(gzip.decompress(SPEC.read_bytes()))
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops
            if m in ("get", "post", "delete")}


def supplement() -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
    """The derived operations, and the underived ones with the reason."""
    doc = json.loads(gzip.decompress(SUPPLEMENT.read_bytes()))
    derived = {(m.upper(), shape(p)) for p, ops in doc["paths"].items() for m in ops}
    return derived, {(u["method"], shape(u["path"])): u["reason"]
                     for u in doc.get("x-underived", [])}


def shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print the list as markdown")
    args = ap.parse_args(argv)
    sdk = sdk_operations(Path(stripe.__file__).parent)
    known = {(m, shape(p)) for m, p in spec_operations()}
    missing = sorted((p, m) for m, p in sdk if (m, shape(p)) not in known)
    derived, why = supplement()

    def mark(m: str, p: str) -> str:
        if (m, shape(p)) in derived:
            return ""
        return f" (not derived: {why.get((m, shape(p)), 'not in sdk3.json.gz')})"

    v1 = [(p, m) for p, m in missing if p.startswith("/v1/")]
    v2 = [(p, m) for p, m in missing if p.startswith("/v2/")]
    families: dict[str, list[str]] = defaultdict(list)
    for p, m in missing:
        parts = p.split("/")
        family = "/".join(parts[1:4]) if parts[1] == "v2" else "/".join(parts[2:4]) \
            if parts[2] in (
            "billing", "checkout", "climate", "entitlements", "financial_connections",
            "identity", "issuing", "radar", "reporting", "tax", "terminal", "test_helpers",
            "treasury", "apps", "forwarding", "billing_portal", "sigma") else parts[2]
        families[family].append(f"{m} {p}{mark(m, p)}")
    answered = sum(1 for p, m in missing if not mark(m, p))
    print(f"stripe-python {stripe.VERSION} (API {stripe.api_version}): {len(sdk)} operations; "
          f"{len(missing)} not in the vendored spec (2024-04-10): {len(v1)} under /v1, "
          f"{len(v2)} under /v2; {answered} derived from the SDK (sdk3.json.gz), "
          f"{len(missing) - answered} not derived")
    for family, ops in sorted(families.items()):
        if args.markdown:
            print(f"- `{family}` ({len(ops)}): " + ", ".join(f"`{o}`" for o in ops))
        else:
            print(f"\n{family} ({len(ops)})")
            for o in ops:
                print(f"  {o}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
