"""What templates and handlers see: the request as data, captures, ids, time, Faker, world."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guard.ids import Ids
from guard.request import Request, Response

if TYPE_CHECKING:
    from guard.world.deliveries import Delivery
    from guard.world.store import World

Effect = Callable[[], Any]
"""Work to do after the response is sent (e.g. a webhook delivery); may be async."""


class Data(dict[str, Any]):
    """Request data for templates: a missing field reads as ``none`` (request fields are
    optional by nature), while unknown template *names* still fail under StrictUndefined.
    Use ``request.form['items']`` for fields named like dict methods (items, keys, values)."""

    def __missing__(self, key: str) -> None:
        return None


def lenient(value: Any) -> Any:
    if isinstance(value, dict):
        return Data({k: lenient(v) for k, v in value.items()})
    if isinstance(value, list):
        return [lenient(v) for v in value]
    return value


class RequestView:
    """The request as templates see it. Every value is data; nothing here is ever rendered."""

    def __init__(self, req: Request) -> None:
        self._req = req
        self._cache: dict[str, Any] = {}

    def _data(self, name: str, value: Any) -> Any:
        if name not in self._cache:
            self._cache[name] = lenient(value)
        return self._cache[name]

    @property
    def method(self) -> str:
        return self._req.method

    @property
    def url(self) -> str:
        return self._req.url

    @property
    def scheme(self) -> str:
        return self._req.scheme

    @property
    def host(self) -> str:
        return self._req.host

    @property
    def path(self) -> str:
        return self._req.path

    @property
    def query(self) -> dict[str, Any]:
        return self._data("query", self._req.query_map)  # type: ignore[no-any-return]

    @property
    def headers(self) -> dict[str, str]:
        return self._data("headers", self._req.header_map)  # type: ignore[no-any-return]

    @property
    def form(self) -> dict[str, Any]:
        return self._data("form", self._req.form)  # type: ignore[no-any-return]

    @property
    def json(self) -> Any:
        return self._data("json", self._req.json)

    @property
    def text(self) -> str:
        return self._req.text

    @property
    def client(self) -> str:
        return self._req.client

    @property
    def sandbox(self) -> str:
        return self._req.sandbox


class WorldView:
    """Read-only access to the sandbox's world from templates."""

    def __init__(self, world: World) -> None:
        self._world = world

    def get(self, collection: str, id: str) -> dict[str, Any] | None:
        return self._world.get(collection, id)

    def list(self, collection: str) -> list[dict[str, Any]]:
        return self._world.list(collection)

    def count(self, collection: str) -> int:
        return self._world.count(collection)


class LazyFaker:
    """Defers creating the sandbox's Faker (slow to load) until a template uses it."""

    def __init__(self, world: World) -> None:
        self._world = world

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._world.faker, name)


@dataclass
class SimContext:
    """Everything a provider handler gets for one simulated request."""

    request: Request
    captures: Mapping[str, str]
    world: World
    rule_id: str
    render: Callable[..., Any]
    effects: list[Effect] = field(default_factory=list)
    options: Mapping[str, Any] = field(default_factory=dict)
    """Provider settings from the command line (e.g. ``webhook_allow``)."""
    persist: Callable[[], None] = lambda: None
    """Write the world's changes made outside the request (by an effect) to ``--state``."""
    deliveries: list[Delivery] = field(default_factory=list)
    """Deliveries to queue in the world store once the request's changes are committed
    (any replica then makes them: :mod:`guard.world.deliveries`)."""

    @property
    def ids(self) -> Ids:
        return self.world.ids

    @property
    def now(self) -> int:
        """The sandbox clock as a Unix timestamp."""
        return self.world.clock.timestamp()

    def deliver(self, job: Delivery) -> None:
        """Queue ``job`` (due now) when this request commits; dropped with it otherwise."""
        self.deliveries.append(job)

    def after(self, effect: Effect) -> None:
        """Run ``effect`` after the response is sent (errors are logged, never fatal)."""
        self.effects.append(effect)

    @staticmethod
    def json(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
        return Response.json(status, data, (headers or {}).items())


def template_context(req: Request, captures: Mapping[str, str], world: World,
                     rule_id: str) -> dict[str, Any]:
    """The names a template can use. See docs/rules.md 'Template context'."""
    clock = world.clock
    return {
        "request": RequestView(req),
        "captures": dict(captures),
        "faker": LazyFaker(world),
        "ids": world.ids,
        "now": clock.now,
        "timestamp": clock.timestamp,
        "world": WorldView(world),
        "rule": rule_id,
        "sandbox": world.name,
    }
