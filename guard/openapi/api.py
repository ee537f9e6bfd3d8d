"""One simulated API: a description compiled into operations, each answered by validating
the request, doing what its role says to the sandbox's world, and generating the answer.

>>> from guard.openapi.operations import _demo_spec
>>> api = OpenApi(_demo_spec(), Settings(pack="demo"))
>>> sorted(api.summary().items())
[('example_only', 5), ('operations', 5), ('stateful', 0)]
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.openapi.documents import document, is_document
from guard.openapi.generate import Fixtures, Generator, Source, copy
from guard.openapi.operations import Operation, compile_operations, normalize
from guard.openapi.problems import SHAPES, Shape
from guard.openapi.schema import list_shape, merged, object_name, types
from guard.openapi.search import QueryError, matches, parse
from guard.openapi.spec import Spec
from guard.openapi.state import (
    Collection,
    action_status,
    apply_params,
    collections,
    world_collection,
)
from guard.openapi.validate import Invalid, Issue, Validated, Validator
from guard.request import Request, Response
from guard.world import bridge
from guard.world.store import World

PAGING = ("stripe", "cursor", "link", "offset", "none")
SINGLETONS = "singletons"
# What a provider says a create in a polymorphic collection makes (Stripe: a card token
# makes a card): given the operation and the request's body, the object type and the
# object to start from, or None to let the engine decide (see OpenApi._creating).
Maker = Callable[[Operation, Any], "tuple[str, dict[str, Any] | None] | None"]


@dataclass(frozen=True)
class Settings:
    """What a pack declares about its API besides the description."""

    pack: str
    errors: str = "rfc9457"
    paging: str = "none"
    closed: bool = False  # objects listing properties accept no others (Stripe)
    strict: bool = False  # no open world: unknown ids are not-found everywhere
    fixtures: Path | None = None
    max_limit: int = 100
    default_limit: int = 10
    populate: int = 0  # objects a list of a collection the agent cannot create starts with
    base_path: str = ""  # the server URL's path, before every operation path (/api)


@dataclass
class Answer:
    """What an operation produced: a response, or data the caller wraps (Stripe's expand)."""

    status: int
    data: Any
    headers: list[tuple[str, str]] = field(default_factory=list)
    error: Response | None = None
    media_type: str | None = None  # of a document answer (``data`` is its bytes)


class NotFound(Exception):  # noqa: N818
    def __init__(self, noun: str, id: str) -> None:
        super().__init__(f"No such {noun}: '{id}'")
        self.noun, self.id = noun, id


class OpenApi:
    """Everything compiled from one description for one pack."""

    def __init__(self, spec: Spec, settings: Settings) -> None:
        if settings.errors not in SHAPES:
            raise ValueError(f"unknown error shape {settings.errors!r}: use one of "
                             f"{', '.join(sorted(SHAPES))}")
        if settings.paging not in PAGING:
            raise ValueError(f"unknown paging {settings.paging!r}: use one of "
                             f"{', '.join(PAGING)}")
        self.spec = spec
        self.settings = settings
        self.shape: Shape = SHAPES[settings.errors]
        self.operations = compile_operations(spec)
        self.collections = collections(spec, self.operations, settings.pack)
        self.fixtures = Fixtures.load(settings.fixtures) if settings.fixtures else Fixtures()
        self.validator = Validator(spec, closed=settings.closed)
        self._checker = Validator(spec, closed=False)
        # Provider rules the description cannot say (Stripe's currency list, e-mail syntax):
        # each raises Invalid; set by the pack's provider module (guard/openapi/pack.py).
        self.checks: list[Callable[[Operation, Validated], None]] = []

    def summary(self) -> dict[str, int]:
        """For ``guard check``: how many operations, how many keep state."""
        stateful = sum(1 for o in self.operations if self.collection(o) is not None)
        return {"operations": len(self.operations), "stateful": stateful,
                "example_only": len(self.operations) - stateful}

    def collection(self, op: Operation) -> Collection | None:
        if op.collection is None or op.role == "none":
            return None
        return self.collections.get(op.collection)

    # answering

    def validate(self, op: Operation, req: Request, captures: dict[str, str]) -> Validated:
        validated = self.validator.request(op, req, captures)
        for check in self.checks:
            check(op, validated)
        return validated

    def handle(self, op: Operation, req: Request, captures: dict[str, str],
               world: World, *, strict: bool = False) -> Response:
        """Validate and answer (the whole job, for packs without a provider wrapper).
        ``strict``: the sandbox's world is strict (no open world, as the pack's own
        ``strict``)."""
        answer = self.answer(op, req, captures, world, strict=strict)
        if answer.error is not None:
            return answer.error
        return self.render(answer)

    def render(self, answer: Answer) -> Response:
        if answer.data is None:
            return Response(answer.status, list(answer.headers))
        if isinstance(answer.data, bytes):
            return Response(answer.status, [
                ("Content-Type", answer.media_type or "application/octet-stream"),
                *answer.headers], answer.data)
        return Response.json(answer.status, answer.data, answer.headers)

    def answer(self, op: Operation, req: Request, captures: dict[str, str],
               world: World, *, strict: bool = False) -> Answer:
        try:
            params = self.validate(op, req, captures)
        except Invalid as e:
            return Answer(400, None, error=self.shape.invalid(e.issue))
        try:
            return self.act(op, req, params, world, strict=strict)
        except NotFound as e:
            return Answer(404, None, error=self.shape.not_found(e.noun, e.id, req.path))
        except Invalid as e:
            return Answer(400, None, error=self.shape.invalid(e.issue))

    def generator(self, world: World) -> Generator:
        return Generator(self.spec, self.fixtures,
                         Source(world.rng, world.faker, world.ids, world.clock.timestamp))

    def act(self, op: Operation, req: Request, params: Validated, world: World, *,
            strict: bool = False, make: Maker | None = None) -> Answer:
        """Do what the operation's role says; a document operation (a quote's PDF) answers
        the file's bytes once its object is found. ``make``: see :data:`Maker`."""
        if op.media_type is None or not is_document(self.spec, op.media_type, op.schema):
            return self._act(op, req, params, world, strict=strict, make=make)
        # the objects the path names exist (a quote's PDF: the quote), or not-found
        segs, gen, owner = op.segments, self.generator(world), None
        for i, seg in enumerate(segs):
            coll = self.collections.get(normalize("/" + "/".join(segs[:i]))) if i else None
            name = seg[1:-1] if seg.startswith("{") and seg.endswith("}") else None
            if coll is not None and name is not None and name in params.path:
                self._find(coll, world_collection(coll, {}), params.path[name], world, gen,
                           strict or self.settings.strict)
                owner = coll
        answer = self._act(op, req, params, world, strict=strict)
        if answer.error is not None:
            return answer
        title = " ".join([owner.noun if owner else segs[-1],
                          *(str(v) for v in params.path.values())])
        return Answer(answer.status, document(op.media_type, title), answer.headers,
                      media_type=op.media_type)

    def _act(self, op: Operation, req: Request, params: Validated, world: World, *,
             strict: bool = False, make: Maker | None = None) -> Answer:
        strict = strict or self.settings.strict
        coll = self.collection(op)
        gen = self.generator(world)
        values = params.body if req.method in ("POST", "PUT", "PATCH") else params.query
        if coll is None:
            answer = self._example(op, gen, world, req)
            if op.method != "GET" and isinstance(answer, dict) and isinstance(values, dict) \
                    and values and op.schema is not None:
                # a stateless POST (a meter event, a v2 adjustment) echoes what it was sent
                answer = apply_params(self.spec, answer, values, op.schema, self._fits)
            return Answer(op.status, answer)
        parents = {p: params.path[p] for p, _ in op.parents if p in params.path}
        self._check_parents(op, parents, world, gen, strict)
        where = world_collection(coll, parents)
        item_id = params.path.get(op.item_param or "") if op.item_param else None
        if op.role == "create":
            name, schema, base = self._creating(op, coll, values, make)
            obj = gen.value(schema)
            if not isinstance(obj, dict):
                return Answer(op.status, obj)
            if base is not None:
                obj.update(base)
            for nested in values.values() if coll.variants and isinstance(values, dict) \
                    else ():  # the fields of the hash that named the type
                if isinstance(nested, dict) and nested.get("object") == obj.get("object"):
                    obj = apply_params(self.spec, obj, nested, schema, self._fits)
            if name is not None:
                where = world_collection(coll, parents, name)
            obj = apply_params(self.spec, obj, values, schema, self._fits)
            for param, fld in coll.parent_field.items():
                if param in parents:
                    obj[fld] = parents[param]
            key = obj.get("id")
            if isinstance(key, (str, int)) and not isinstance(key, bool):
                world.put(where, obj, str(key))
            return Answer(op.status, self._shape_for(op, obj, gen))
        if op.role in ("list", "search"):
            return self._list(op, coll, where, req, params, world, gen, strict)
        assert item_id is not None
        where, schema = self._variant(coll, parents, item_id, world)
        obj = self._find(coll, where, item_id, world, gen, strict)
        if op.role == "retrieve":
            return Answer(op.status, self._shape_for(op, obj, gen))
        if op.role == "update":
            obj = apply_params(self.spec, obj, values, schema, self._fits)
            world.put(where, obj, item_id)
            return Answer(op.status, self._shape_for(op, obj, gen))
        if op.role == "delete":
            world.delete(where, item_id)
            return Answer(op.status, self._deleted(op, obj, gen))
        # an action on the item
        verb = op.segments[-1]
        status = action_status(self.spec, verb, coll.schema)
        wrapped = coll.wrap is not None and op.schema is not None and coll.wrap in (
            merged(self.spec, op.schema).get("properties") or {})
        if object_name(self.spec, op.schema) == coll.object and coll.object is not None \
                or op.schema is not None and merged(self.spec, op.schema) == \
                merged(self.spec, coll.schema) or wrapped:
            obj = apply_params(self.spec, obj, values, schema, self._fits)
            if status is not None:
                obj["status"] = status
            world.put(where, obj, item_id)
            return Answer(op.status, self._shape_for(op, obj, gen))
        return Answer(op.status, self._example(op, gen, world, req))

    def _fits(self, value: Any, schema: Any) -> bool:
        try:
            self._checker.value(value, schema, "", form=False)
        except Invalid:
            return False
        return True

    def conforms(self, value: Any, schema: Any) -> Issue | None:
        """The first way ``value`` breaks ``schema`` (for tests and the measurement)."""
        try:
            self._checker.value(value, schema, "", form=False)
        except Invalid as e:
            return e.issue
        return None

    def _creating(self, op: Operation, coll: Collection, values: Any, make: Maker | None
                  ) -> tuple[str | None, Any, dict[str, Any] | None]:
        """What a create makes: (variant's world collection or None for the collection's
        own type, its schema, the object to start from). In a polymorphic collection the
        provider's ``make`` decides, else a hash in the body naming one of the types
        (``external_account[object]=card``); otherwise the collection's first type."""
        if not coll.variants:
            return None, coll.schema, None
        by_type = {object_name(self.spec, schema): (name, schema)
                   for name, schema in coll.variants.items()}
        chosen = make(op, values) if make is not None else None
        wanted, base = chosen if chosen is not None else (None, None)
        if wanted is None and isinstance(values, dict):
            wanted = next((str(v["object"]) for v in values.values()
                           if isinstance(v, dict) and v.get("object") in by_type), None)
        if wanted is None or wanted == coll.object or wanted not in by_type:
            return None, coll.schema, base
        name, schema = by_type[wanted]
        return name, schema, base

    def _variant(self, coll: Collection, parents: dict[str, str], item_id: str,
                 world: World) -> tuple[str, Any]:
        """Where the item lives and its schema: in a polymorphic collection (an account's
        external accounts) the variant's collection that holds it (``card_...`` among the
        cards), else the collection's own."""
        for name, schema in coll.variants.items():
            where = world_collection(coll, parents, name)
            found = world.get(where, item_id)
            if found is not None and not found.get("deleted"):
                return where, schema
        return world_collection(coll, parents), coll.schema

    def _find(self, coll: Collection, where: str, item_id: str, world: World,
              gen: Generator, strict: bool) -> dict[str, Any]:
        obj = world.get(where, item_id)
        if obj is not None and not obj.get("deleted"):
            return obj
        if coll.creatable or strict or obj is not None:
            raise NotFound(coll.noun, item_id)
        # open world: made on first reference, then kept
        made = gen.value(coll.schema)
        if not isinstance(made, dict):
            raise NotFound(coll.noun, item_id)
        made["id"] = item_id
        id_schema = merged(self.spec, (merged(self.spec, coll.schema).get("properties") or {})
                           .get("id", {}))
        if {"integer", "number"} & set(types(id_schema)):  # an API with numeric ids
            if not (item_id.isascii() and item_id.isdigit()) or len(item_id) > 18:
                raise NotFound(coll.noun, item_id)
            made["id"] = int(item_id)
        world.put(where, made, item_id)
        return made

    def _check_parents(self, op: Operation, parents: dict[str, str], world: World,
                       gen: Generator, strict: bool) -> None:
        for param, parent_path in op.parents:
            parent = self.collections.get(parent_path)
            if parent is None or param not in parents:
                continue
            self._find(parent, world_collection(parent, {}), parents[param], world, gen,
                       strict)

    def _shape_for(self, op: Operation, obj: dict[str, Any], gen: Generator) -> Any:
        """The object as the operation answers it: bare, or inside the API's wrapper."""
        coll = self.collection(op)
        if coll is None or coll.wrap is None or op.schema is None or coll.wrap not in (
                merged(self.spec, op.schema).get("properties") or {}):
            return obj
        envelope = gen.value(op.schema, use_fixture=False)
        if not isinstance(envelope, dict):
            return obj
        envelope[coll.wrap] = obj
        return envelope

    def _deleted(self, op: Operation, obj: dict[str, Any], gen: Generator) -> Any:
        if op.schema is None:
            return None
        answer = gen.value(op.schema, use_fixture=False)
        if isinstance(answer, dict):
            if "id" in answer:
                answer["id"] = obj.get("id")
            if "deleted" in answer:
                answer["deleted"] = True
            if object_name(self.spec, op.schema) == object_name(self.spec, self.collection(op)
                                                                .schema  # type: ignore[union-attr]
                                                                ) and "deleted" not in answer \
                    and set(answer) - {"id", "object"}:
                return obj  # the delete answers the object itself
            # else the deletion's own form: {"id", "object"} (Stripe v2), {"deleted": true}
        return answer

    def _example(self, op: Operation, gen: Generator, world: World, req: Request) -> Any:
        """An operation without state: the description's example, else generated. A GET of
        a singleton (``/v1/balance``) answers the same object every time."""
        if op.schema is None and op.example is None:
            return None
        if op.method == "GET":
            kept = world.get(f"{self.settings.pack}.{SINGLETONS}", op.path)
            if kept is not None:
                return kept["value"]
        value = copy(op.example) if op.example is not None else gen.value(op.schema)
        if op.method == "GET":
            world.put(f"{self.settings.pack}.{SINGLETONS}", {"id": op.path, "value": value})
        return value

    # lists

    def _list(self, op: Operation, coll: Collection, where: str, req: Request,
              params: Validated, world: World, gen: Generator, strict: bool) -> Answer:
        if self.settings.populate and not coll.creatable and not strict:
            self._populate(coll, where, world, gen)
        wheres = [where, *(world_collection(coll, params.path, name) for name in coll.variants)]
        items = [o for w in wheres for o in world.list(w) if not o.get("deleted")]
        for param, fld in coll.parent_field.items():
            want = params.path.get(param)
            if want is not None:
                items = [o for o in items if _ref(o.get(fld)) == want]
        q = params.query
        props = merged(self.spec, coll.schema).get("properties") or {}
        for key, value in q.items():
            if key in props and isinstance(value, (str, int, bool)) and key not in (
                    "limit", "starting_after", "ending_before", "page", "cursor"):
                items = [o for o in items if _text(_ref(o.get(key))) == _text(value)]
        if op.role == "search":
            items = self._search(op, q, items)
        created = q.get("created")
        if isinstance(created, (dict, int)):
            items = [o for o in items if _created_ok(o, created)]
        items.sort(key=lambda o: o.get("created", 0) if isinstance(o.get("created"), int)
                   else 0)
        items.reverse()
        shape = list_shape(self.spec, op.schema) if op.schema is not None else None
        if shape is None:
            return Answer(op.status, self._example(op, gen, world, req))
        page, more, headers, token = self._page(items, q, req, coll)
        if shape[0] is None:
            return Answer(op.status, page, headers)
        envelope = gen.value(op.schema, use_fixture=False)
        if not isinstance(envelope, dict):
            envelope = {}
        data = self._envelope(envelope, shape[0], page, more, req, token, len(items),
                              envelope_schema=op.schema)
        return Answer(op.status, data, headers)

    def _populate(self, coll: Collection, where: str, world: World, gen: Generator) -> None:
        """Open world for lists: a collection nobody here creates (a company's candidates,
        employees) starts with ``populate`` objects, made once and kept."""
        marker = f"{self.settings.pack}.populated"
        if world.get(marker, where) is not None:
            return
        for _ in range(self.settings.populate):
            made = gen.value(coll.schema)
            key = made.get("id") if isinstance(made, dict) else None
            if isinstance(key, (str, int)) and not isinstance(key, bool):
                world.put(where, made, str(key))
        world.put(marker, {"id": where})

    def _search(self, op: Operation, q: dict[str, Any], items: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
        """``query`` in Stripe's search language; otherwise the one text parameter
        (``q``, ``search``, ...) as a case-insensitive substring of any text field."""
        text = q.get("query")
        if "query" in op.query_params:
            try:
                query = parse(text if isinstance(text, str) else "")
            except QueryError:
                raise Invalid(Issue("invalid", "query", f"Invalid search query: {text}",
                                    None)) from None
            return [o for o in bridge.turns(items) if matches(query, o)]
        words = [v for k, v in q.items() if isinstance(v, str) and k not in (
            "cursor", "page", "starting_after", "ending_before")]
        if not words:
            return items
        needle = words[0].lower()
        return [o for o in bridge.turns(items) if any(isinstance(v, str) and needle in v.lower()
                                                      for v in o.values())]

    def _page(self, items: list[dict[str, Any]], q: dict[str, Any], req: Request,
              coll: Collection) -> tuple[list[Any], bool, list[tuple[str, str]], str | None]:
        style = self.settings.paging
        limit = q.get("limit", q.get("per_page", self.settings.default_limit))
        if not isinstance(limit, int) or limit < 1:
            limit = self.settings.default_limit
        if limit > self.settings.max_limit:
            raise Invalid(Issue("invalid", "limit", "This value must be less than or equal "
                                f"to {self.settings.max_limit}.", "parameter_invalid_integer"))
        ids = [o.get("id") for o in items]
        if style == "stripe":
            after, before = q.get("starting_after"), q.get("ending_before")
            if after and before:
                raise Invalid(Issue("exclusive", "starting_after", "You may only specify one "
                                    "of these parameters: ending_before, starting_after.",
                                    None))
            page_token = q.get("page")
            if isinstance(page_token, str) and page_token:
                start = _offset(page_token)
                rest = items[start:]
                nxt = _token(start + limit) if len(rest) > limit else None
                return rest[:limit], len(rest) > limit, [], nxt
            if isinstance(after, str) and after:
                if after not in ids:
                    raise NotFound(coll.noun, after)
                rest = items[ids.index(after) + 1:]
                return rest[:limit], len(rest) > limit, [], None
            if isinstance(before, str) and before:
                if before not in ids:
                    raise NotFound(coll.noun, before)
                head = items[:ids.index(before)]
                return head[-limit:], len(head) > limit, [], None
            more = len(items) > limit
            return items[:limit], more, [], _token(limit) if more else None
        if style == "link":
            page = q.get("page", 1)
            page = page if isinstance(page, int) and page > 0 else 1
            start = (page - 1) * limit
            chunk = items[start:start + limit]
            more = len(items) > start + limit
            links = []
            base = f"{req.scheme}://{req.host}{req.path}"
            if more:
                links.append(f'<{base}?page={page + 1}&per_page={limit}>; rel="next"')
                last = (len(items) + limit - 1) // limit
                links.append(f'<{base}?page={last}&per_page={limit}>; rel="last"')
            if page > 1:
                links.append(f'<{base}?page={page - 1}&per_page={limit}>; rel="prev"')
            return chunk, more, [("Link", ", ".join(links))] if links else [], None
        if style in ("cursor", "offset"):
            raw = q.get("cursor", q.get("offset", q.get("after")))
            start = _offset(raw) if isinstance(raw, str) else raw if isinstance(raw, int) else 0
            chunk = items[start:start + limit]
            more = len(items) > start + limit
            return chunk, more, [], (_token(start + limit) if style == "cursor"
                                     else str(start + limit)) if more else None
        return items, False, [], None

    def _list_url(self, path: str, schema: Any) -> str:
        """The list's ``url``: the request path, unless the description pins another
        (``/v1/linked_accounts`` answers ``/v1/financial_connections/accounts``)."""
        prop = (merged(self.spec, schema).get("properties") or {}).get("url")
        pattern = merged(self.spec, prop).get("pattern") if prop is not None else None
        if isinstance(pattern, str) and pattern.startswith("^/") and \
                not path.startswith(pattern[1:]) and pattern[1:].replace("/", "").replace(
                    "_", "").isalnum():
            return pattern[1:]
        return path

    def _envelope(self, envelope: dict[str, Any], key: str, page: list[Any], more: bool,
                  req: Request, token: str | None = None, total: int | None = None,
                  envelope_schema: Any = None) -> dict[str, Any]:
        envelope[key] = page
        if "has_more" in envelope:
            envelope["has_more"] = more
        if "url" in envelope:
            envelope["url"] = self._list_url(req.path, envelope_schema)
        if "total_count" in envelope:
            envelope["total_count"] = total if total is not None else len(page)
        props = (merged(self.spec, envelope_schema).get("properties") or {}) \
            if envelope_schema is not None else {}
        if "next_page_url" in envelope or "previous_page_url" in envelope:
            self._page_urls(envelope, req, token, len(page))
        for name in ("next_page", "next_cursor", "nextCursor", "next"):
            if name in envelope:
                nullable = name not in props or "null" in types(merged(self.spec, props[name]))
                envelope[name] = token if token is not None or nullable else ""
        return envelope


    def _page_urls(self, envelope: dict[str, Any], req: Request, token: str | None,
                   count: int) -> None:
        """Stripe's v2 lists: ``next_page_url``/``previous_page_url`` are this path with
        the request's query and a ``page`` token, or null at either end."""
        from urllib.parse import urlencode

        query = [(k, v) for k, v in req.query if k != "page"]
        here = next((v for k, v in req.query if k == "page"), None)
        start = _offset(here) if here else 0
        limit = max(count, 1)
        for name in ("limit",):
            limit = next((int(v) for k, v in req.query if k == name and v.isdigit()), limit)

        def url(page: str) -> str:
            return req.path + "?" + urlencode([*query, ("page", page)])

        envelope["next_page_url"] = url(token) if token is not None else None
        envelope["previous_page_url"] = url(_token(max(0, start - limit))) if start > 0 \
            else None


def _offset(token: str) -> int:
    try:
        value = int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError):
        raise Invalid(Issue("invalid", "page", f"Invalid page token: {token[:40]}", None)
                      ) from None
    return max(0, value)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _ref(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value is not None else None


def _created_ok(obj: dict[str, Any], spec: dict[str, Any] | int) -> bool:
    created = obj.get("created")
    if not isinstance(created, int):
        return True
    if isinstance(spec, int):
        return created == spec
    checks: dict[str, Callable[[int], bool]] = {
        "gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__, "lte": created.__le__}
    return all(checks[k](v) for k, v in spec.items() if k in checks and isinstance(v, int))


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
