"""Provider handlers: Python code for simulations that templates cannot express well
(state machines, validation, cross-object effects), and the registry rules name them in.

A handler takes a :class:`~guard.synth.context.SimContext` and returns a
:class:`~guard.request.Response`; it changes the sandbox's world only through
``ctx.world`` (inside the request's transaction, undone if anything fails).

Mark a function with :func:`handler`; a provider package collects its marked
functions under its name with :func:`handlers_in`, and :class:`Registry` joins the
providers' tables. A rule's ``respond: {handler: acme.create_order}`` resolves
through the registry, nothing else: no module is imported by name.

>>> @handler
... def create_order(ctx):
...     return ctx.json(201, {"ok": True})
>>> import types
>>> acme = types.ModuleType("acme_handlers")
>>> acme.create_order = create_order
>>> registry = Registry([handlers_in("acme", acme)])
>>> registry.resolve("acme.create_order") is create_order
True
>>> registry.resolve("acme.create_ordr")
Traceback (most recent call last):
...
LookupError: unknown handler 'acme.create_ordr' (did you mean acme.create_order?)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.request import Response
    from guard.synth.context import SimContext

Handler = Callable[["SimContext"], "Response"]

_MARK = "__guard_handler__"


def handler[F: Callable[..., object]](fn: F) -> F:
    """Mark ``fn`` as a handler; :func:`handlers_in` registers it under its function name."""
    setattr(fn, _MARK, True)
    return fn


def is_handler(fn: object) -> bool:
    return callable(fn) and getattr(fn, _MARK, False) is True


def handlers_in(provider: str, *modules: ModuleType) -> dict[str, Handler]:
    """``{"provider.name": fn}`` for every :func:`handler` bound to a public name in
    ``modules``: functions defined there, and handlers a factory made there
    (``retrieve_charge = retrieve("charge")``)."""
    out: dict[str, Handler] = {}
    for module in modules:
        for name, fn in vars(module).items():
            if is_handler(fn) and not name.startswith("_"):
                out[f"{provider}.{name}"] = fn
    return out


class Registry(Mapping[str, Handler]):
    """Handlers by the name rules use. One name for two functions, or one function under
    two names (a handler imported into a second module), is an error."""

    def __init__(self, tables: Iterable[Mapping[str, Handler]] = ()) -> None:
        self._by_name: dict[str, Handler] = {}
        names: dict[int, str] = {}
        for table in tables:
            for name, fn in table.items():
                if name in self._by_name and self._by_name[name] is not fn:
                    raise ValueError(f"handler {name!r} is registered twice")
                other = names.setdefault(id(fn), name)
                if other != name:
                    raise ValueError(f"one handler is registered as both {other!r} and "
                                     f"{name!r}")
                self._by_name[name] = fn

    def __getitem__(self, name: str) -> Handler:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def resolve(self, name: str) -> Handler:
        """The handler called ``name``; ``LookupError`` saying what is wrong otherwise."""
        fn = self._by_name.get(name)
        if fn is not None:
            return fn
        provider, dot, func = name.rpartition(".")
        if not dot or not provider or not func:
            raise LookupError(f"handler {name!r} must be 'provider.function'")
        close = difflib.get_close_matches(name, self._by_name, n=1)
        if close:
            raise LookupError(f"unknown handler {name!r} (did you mean {close[0]}?)")
        providers = sorted({n.rpartition(".")[0] for n in self._by_name})
        if provider not in providers:
            known = ", ".join(providers) or "none"
            raise LookupError(f"unknown handler {name!r}: no provider {provider!r} "
                              f"(providers with handlers: {known})")
        raise LookupError(f"unknown handler {name!r}: provider {provider!r} has no "
                          f"handler {func!r}")
