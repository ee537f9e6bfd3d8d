"""Provider handlers: Python code for simulations that templates cannot express well
(state machines, validation, cross-object effects). A rule names one with
``respond: {handler: stripe.create_customer}``, which resolves to the function
``create_customer`` in ``guard.providers.stripe`` marked with :func:`handler`.

A handler takes a :class:`guard.synth.context.SimContext` and returns a
:class:`guard.request.Response`; it changes the sandbox's world only through
``ctx.world`` (inside the request's transaction, undone if anything fails).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.request import Response
    from guard.synth.context import SimContext

Handler = Callable[["SimContext"], "Response"]

_MARK = "__guard_handler__"


def handler[F: Callable[..., object]](fn: F) -> F:
    """Mark a function as a handler rules may name."""
    setattr(fn, _MARK, True)
    return fn


def resolve_handler(name: str) -> Handler:
    """``stripe.create_customer`` -> ``guard.providers.stripe.create_customer``.

    Raises ``LookupError`` naming what is wrong.
    """
    module_name, _, func = name.rpartition(".")
    if not module_name or not func:
        raise LookupError(f"handler {name!r} must be 'provider.function'")
    try:
        module = importlib.import_module(f"guard.providers.{module_name}")
    except ModuleNotFoundError:
        raise LookupError(f"unknown handler {name!r}: no provider module {module_name!r}") from None
    fn = getattr(module, func, None)
    if fn is None or not getattr(fn, _MARK, False):
        raise LookupError(f"unknown handler {name!r}: guard.providers.{module_name} has no "
                          f"handler {func!r}")
    return fn  # type: ignore[no-any-return]
