"""Find, without running it, which templates a provider handler renders by name.

Handlers render with ``ctx.render("stripe/refund.yaml", ...)``. When the name is a
string literal, the loader checks that template (exists, compiles) at load time,
so ``guard check`` reports a missing or broken one instead of the first request
that needs it. Names computed at run time are only checked when rendered.

>>> from guard.synth.handlers import handler
>>> @handler
... def create(ctx):
...     return ctx.json(200, ctx.render("acme/order.yaml", n=1))
>>> rendered_templates(create)
('acme/order.yaml',)
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from functools import lru_cache
from typing import Any


def rendered_templates(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Literal template names passed to ``<name>.render(...)`` in ``fn``'s source, and in the
    functions of its module that it calls by name (helpers that take ``ctx``)."""
    source = _source(fn)
    if source is None:
        return ()
    tree = ast.parse(source)
    names = list(_literal_renders(tree))
    called = {n.func.id for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    module = inspect.getmodule(fn)
    for name in sorted(called):
        helper = getattr(module, name, None)
        if inspect.isfunction(helper) and helper is not fn and helper.__module__ == fn.__module__:
            helper_source = _source(helper)
            if helper_source is not None:
                names.extend(_literal_renders(ast.parse(helper_source)))
    return tuple(dict.fromkeys(names))


def _literal_renders(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "render" and isinstance(node.func.value, ast.Name)
                and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            out.append(node.args[0].value)
    return out


@lru_cache(maxsize=512)
def _source(fn: Callable[..., Any]) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None  # no source (built-in, or made at run time): checked when rendered
