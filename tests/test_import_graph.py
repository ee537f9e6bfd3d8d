"""guard's layers import each other in one direction only, and only the proxy layer
imports mitmproxy.

The graph is read from the source with ``ast``, so an import counts wherever it is
written: at the top, inside a function (lazy), or under ``if TYPE_CHECKING:``. Importing
``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those count too (except a
module's own parent packages, which are already importing when it runs); a submodule
that imports names from its own package's ``__init__`` depends on that ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "guard"

# Where mitmproxy may be imported: the proxy layer, the package guard/proxy/.
MITMPROXY_PACKAGE = "guard.proxy"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {module_name(p) for p in PACKAGE.rglob("__init__.py")}


def imported(name: str, tree: ast.AST) -> Iterator[tuple[str, int]]:
    """Every module name ``name`` imports, with the line, resolving relative imports and
    ``from package import submodule``."""
    base = name if name in PACKAGES else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")[: len(base.split(".")) - node.level + 1]
                module = ".".join(parts + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                yield (full if full in MODULES else module), node.lineno


def edges_of(name: str) -> Iterator[Edge]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for target, line in imported(name, tree):
        if target.split(".")[0] != "guard":
            continue
        while target not in MODULES and "." in target:
            target = target.rpartition(".")[0]
        yield Edge(name, target, line)
        parts = target.split(".")
        for i in range(2, len(parts)):  # the packages importing it runs, beyond guard itself
            ancestor = ".".join(parts[:i])
            if not (name == ancestor or name.startswith(ancestor + ".")):
                yield Edge(name, ancestor, line)


def graph() -> dict[str, list[Edge]]:
    return {name: list(edges_of(name)) for name in MODULES}


def cycles(g: dict[str, list[Edge]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import),
    by Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in g:
        if root in index:
            continue
        work = [(root, iter(g[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for edge in edges:
                nxt = edge.target
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(g[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or any(e.target == node for e in g[node]):
                        found.append(sorted(component))
    return found


def describe(component: list[str], g: dict[str, list[Edge]]) -> str:
    inside = set(component)
    lines = [str(e) for m in component for e in g[m] if e.target in inside]
    return "\n  ".join([", ".join(component), *sorted(set(lines))])


def test_no_module_inside_guard_takes_part_in_an_import_cycle():
    g = graph()
    found = cycles(g)
    assert not found, "import cycles:\n" + "\n".join(describe(c, g) for c in found)


def test_the_rules_know_nothing_of_responses_or_providers():
    # the layering the cycle test alone would allow to invert: rules are matchers
    below = [str(e) for name in MODULES if name.startswith("guard.rules")
             for e in edges_of(name)
             if e.target.startswith(("guard.synth", "guard.providers", "guard.audit"))]
    assert not below, below


def test_only_the_proxy_layer_imports_mitmproxy():
    offenders = []
    for name, path in MODULES.items():
        if name == MITMPROXY_PACKAGE or name.startswith(MITMPROXY_PACKAGE + "."):
            continue
        for target, line in imported(name, ast.parse(path.read_text(encoding="utf-8"))):
            if target == "mitmproxy" or target.startswith("mitmproxy."):
                offenders.append(f"{name}:{line} imports {target}")
    assert not offenders, offenders


CHECKER_CASES = {
    "a lazy import inside a function": ("guard.a", "def f():\n    import guard.b\n"),
    "an import under TYPE_CHECKING": ("guard.a", "if TYPE_CHECKING:\n    from guard.b import X\n"),
    "a relative import": ("guard.a", "from .b import X\n"),
}


@pytest.mark.parametrize("case", CHECKER_CASES, ids=list(CHECKER_CASES))
def test_the_checker_sees(case, monkeypatch):
    source_name, source = CHECKER_CASES[case]
    monkeypatch.setitem(MODULES, "guard.a", Path("a.py"))
    monkeypatch.setitem(MODULES, "guard.b", Path("b.py"))
    targets = {t for t, _ in imported(source_name, ast.parse(source))}
    assert "guard.b" in targets


def test_the_checker_finds_a_cycle_through_a_package_init():
    e = Edge
    g = {"guard.pkg": [e("guard.pkg", "guard.pkg.mod", 1)],
         "guard.pkg.mod": [e("guard.pkg.mod", "guard.other", 1)],
         "guard.other": [e("guard.other", "guard.pkg", 1)],
         "guard.leaf": []}
    assert cycles(g) == [["guard.other", "guard.pkg", "guard.pkg.mod"]]
