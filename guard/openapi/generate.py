"""Values for answers, generated from response schemas: the description's examples and the
pack's fixtures first, then values made from the schema with the sandbox's seeded Faker
(formats, enums, id prefixes learned from examples, realistic names and emails).

Everything comes from the sandbox's random stream, so the same seed and the same requests
give the same answers. Generated values are data: nothing here is rendered as a template.

>>> import random
>>> from guard.openapi.operations import _demo_spec
>>> from guard.ids import Ids
>>> g = Generator(_demo_spec(), Fixtures(), Source(random.Random(1), None, Ids(random.Random(1)),
...               lambda: 1767225600))
>>> pet = g.value({"type": "object", "required": ["id", "email"], "properties": {
...     "id": {"type": "string", "example": "pet_123abc"}, "email": {"type": "string",
...     "format": "email"}, "kind": {"type": "string", "enum": ["cat", "dog"]}}})
>>> pet["id"].startswith("pet_"), "@" in pet["email"], pet["kind"]
(True, True, 'cat')
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guard.ids import BASE62, Ids
from guard.openapi.schema import merged, object_name, types
from guard.openapi.spec import Spec

MAX_DEPTH = 6
_PLACEHOLDER = re.compile(r"^([a-z]+_)123$")
_ID_EXAMPLE = re.compile(r"^([A-Za-z][A-Za-z0-9]*(?:_[a-z]+)?_)([A-Za-z0-9]{6,})$")


def copy(data: Any) -> Any:
    return json.loads(json.dumps(data))


@dataclass
class Source:
    """Where generated values come from: the sandbox's random stream, Faker, ids and clock."""

    rng: random.Random
    faker: Any  # a seeded Faker, or None (then simpler values are drawn from rng)
    ids: Ids
    now: Callable[[], int]


@dataclass
class Fixtures:
    """Example objects by name (Stripe's ``fixtures3.json`` keys them by resource id)."""

    objects: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Fixtures:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("resources"), dict):
            data = data["resources"]
        if not isinstance(data, dict):
            raise ValueError("a fixtures file is a mapping of object names to example objects")
        return cls({str(k): v for k, v in data.items()})

    def find(self, spec: Spec, schema: Any, title: str | None = None) -> Any:
        node = merged(spec, schema)
        for key in (node.get("x-resourceId"), object_name(spec, node), title,
                    node.get("title")):
            if isinstance(key, str) and key in self.objects:
                return self.objects[key]
        return None


class Generator:
    """Makes a value valid against a response schema."""

    def __init__(self, spec: Spec, fixtures: Fixtures, source: Source) -> None:
        self.spec = spec
        self.fixtures = fixtures
        self.src = source

    def value(self, schema: Any, *, name: str = "", depth: int = 0, use_fixture: bool = True,
              fresh_id: bool = True) -> Any:
        if depth > 3 * MAX_DEPTH:
            return None  # alternatives that lead back to themselves
        node = merged(self.spec, schema)
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        title = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None
        if "example" in node and not _is_object(node):
            return copy(node["example"])
        alts = node.get("anyOf") or node.get("oneOf")
        if isinstance(alts, list) and alts:
            return self._alternative(node, alts, name, depth)
        t = types(node)
        enum = node.get("enum")
        if isinstance(enum, list) and enum:
            return copy(enum[0])
        if "object" in t:
            if use_fixture:
                fixture = self.fixtures.find(self.spec, node, title)
                if fixture is not None:
                    return self.from_fixture(fixture, node, fresh_id=fresh_id)
            if "example" in node and isinstance(node["example"], dict):
                return self._refresh(copy(node["example"]), node, fresh_id)
            return self._object(node, depth)
        if "array" in t:
            if depth >= MAX_DEPTH - 2 or name in ("data", "items", "results"):
                return []
            item = self.value(node.get("items") or {}, name=name, depth=depth + 1)
            return [item] if item is not None or "null" in types(node.get("items")) else []
        if "null" in t and (depth >= MAX_DEPTH or len(t) == 1):
            return None
        return self.scalar(node, t, name)

    def _alternative(self, node: dict[str, Any], alts: list[Any], name: str, depth: int) -> Any:
        kinds = [types(merged(self.spec, a)) for a in alts]
        if node.get("nullable") and depth >= 2:
            return None
        # An expandable reference (``anyOf: [string, $ref]``) answers with the id.
        if any("string" in k for k in kinds) and any("object" in k for k in kinds):
            expansion = node.get("x-expansionResources") or {}
            targets = expansion.get("oneOf") if isinstance(expansion, dict) else None
            target = targets[0] if isinstance(targets, list) and targets else next(
                (a for a, k in zip(alts, kinds, strict=True) if "object" in k), None)
            return self.id_for(target) if target is not None else self.src.ids.base62(24)
        for alt, k in zip(alts, kinds, strict=True):
            if k != ("null",):
                return self.value(alt, name=name, depth=depth + 1)
        return None

    def _object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        props: dict[str, Any] = node.get("properties") or {}
        required = set(node.get("required") or [])
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if depth >= MAX_DEPTH and key not in required:
                continue
            sub_node = merged(self.spec, sub)
            if key not in required and depth >= 2 and "null" in types(sub_node):
                out[key] = None
                continue
            if key == "id" and "string" in types(sub_node):
                out[key] = self.id_for(node)
                continue
            if key == "id" and {"integer", "number"} & set(types(sub_node)):
                out[key] = self.src.ids.number(1000, 9_999_999)
                continue
            out[key] = self.value(sub, name=key, depth=depth + 1)
        if not props and isinstance(node.get("additionalProperties"), dict) and depth < 2:
            return {}
        return out

    def from_fixture(self, fixture: Any, node: dict[str, Any], *, fresh_id: bool) -> Any:
        """A fixture object made this sandbox's: a new id with the same prefix, the sandbox's
        time, test mode."""
        return self._refresh(copy(fixture), node, fresh_id)

    def _refresh(self, obj: dict[str, Any], node: dict[str, Any], fresh_id: bool) -> Any:
        if fresh_id and isinstance(obj.get("id"), str):
            sample = self._id_example(node) or obj["id"]
            obj["id"] = self.id_like(sample) if sample else self.src.ids.base62(24)
        self._complete(obj, node, 0)
        props = node.get("properties") or {}
        if "created" in obj and isinstance(obj["created"], int):
            obj["created"] = self.src.now()
        if "livemode" in obj and "livemode" in props:
            obj["livemode"] = False
        return obj

    def _complete(self, obj: Any, node: dict[str, Any], depth: int) -> None:
        """Fill in what the description requires and an example lacks. Examples show
        newer shapes than the description (fields moved since): both are kept, so clients of
        either version find what they read."""
        if not isinstance(obj, dict) or depth > MAX_DEPTH:
            return
        props: dict[str, Any] = node.get("properties") or {}
        for key in node.get("required") or []:
            if key not in obj and key in props:
                obj[key] = self.value(props[key], name=key, depth=depth + 2)
        for key, value in obj.items():
            if key in props and isinstance(value, (dict, list)):
                sub = merged(self.spec, props[key])
                if isinstance(value, list):
                    items = merged(self.spec, sub.get("items") or {})
                    for item in value:
                        self._complete(item, self._branch_for(items, item), depth + 1)
                else:
                    self._complete(value, self._branch_for(sub, value), depth + 1)

    def _branch_for(self, node: dict[str, Any], value: Any) -> dict[str, Any]:
        alts = node.get("anyOf") or node.get("oneOf")
        if not isinstance(alts, list):
            return node
        kind = value.get("object") if isinstance(value, dict) else None
        for alt in alts:
            sub = merged(self.spec, alt)
            if kind is not None and object_name(self.spec, sub) == kind:
                return sub
        objects = [merged(self.spec, a) for a in alts if "object" in types(merged(self.spec, a))]
        return objects[0] if len(objects) == 1 else node

    def id_for(self, schema: Any) -> str:
        """An id for an object of ``schema``: shaped like its example's or fixture's id."""
        node = merged(self.spec, schema)
        fixture = self.fixtures.find(self.spec, node)
        for sample in (self._id_example(node),
                       fixture.get("id") if isinstance(fixture, dict) else None,
                       (node.get("example") or {}).get("id")
                       if isinstance(node.get("example"), dict) else None,
                       merged(self.spec, (node.get("properties") or {}).get("id")).get("example")):
            if isinstance(sample, str) and sample:
                return self.id_like(sample)
        prop = merged(self.spec, (node.get("properties") or {}).get("id"))
        if prop.get("format") == "uuid":
            return self.src.ids.uuid()
        if "integer" in types(prop):
            return str(self.src.ids.number(1000, 999999))
        return self.src.ids.base62(24)

    def _id_example(self, node: dict[str, Any]) -> str | None:
        """The example of the schema's ``id`` property: it names the id's shape before a
        fixture's id does (fixtures of newer objects carry placeholders like ``obj_123``)."""
        example = merged(self.spec, (node.get("properties") or {}).get("id")).get("example")
        return example if isinstance(example, str) and example else None

    def id_like(self, sample: str) -> str:
        """A new id shaped like ``sample``: ``cus_NffrFeUfNV2Hib`` -> ``cus_`` + 14 base62."""
        placeholder = _PLACEHOLDER.match(sample)
        if placeholder:  # stripe-mock's fixtures of newer objects: obj_123, meter_123
            prefix = placeholder.group(1)
            return ("" if prefix == "obj_" else prefix) + self.src.ids.base62(24)
        m = _ID_EXAMPLE.match(sample)
        if m:
            return m.group(1) + self.src.ids.base62(max(len(m.group(2)), 14))
        if _is_uuid_like(sample):
            return self.src.ids.uuid()
        if sample.isascii() and sample.isdigit():
            return str(self.src.ids.number(10 ** (len(sample) - 1), 10 ** len(sample) - 1))
        return "".join(self.src.rng.choice(BASE62) if c.isalnum() else c for c in sample)

    def scalar(self, node: dict[str, Any], t: tuple[str, ...], name: str) -> Any:
        kinds = [k for k in t if k != "null"]
        kind = kinds[0] if kinds else "string"
        fmt = node.get("format")
        lname = name.lower()
        if kind == "boolean":
            return lname in ("active", "enabled", "ok", "success")
        if kind == "integer":
            if fmt == "unix-time" or lname in ("created", "updated") or lname.endswith("_at"):
                return self.src.now()
            low = node.get("minimum", 0)
            high = node.get("maximum", 10_000 if "amount" in lname else 100)
            low = int(low) if isinstance(low, (int, float)) else 0
            high = max(low, int(high) if isinstance(high, (int, float)) else low + 100)
            return self.src.rng.randint(low, high)
        if kind == "number":
            return round(self.src.rng.uniform(0, 100), 2)
        return self._string(node, fmt, lname)

    def _string(self, node: dict[str, Any], fmt: Any, name: str) -> str:
        f = self.src.faker
        limit = node.get("maxLength") if isinstance(node.get("maxLength"), int) else None
        text = self._named(fmt, name, f)
        if limit is not None and len(text) > limit:
            text = text[:limit]
        return text

    def _named(self, fmt: Any, name: str, f: Any) -> str:
        now = datetime.fromtimestamp(self.src.now(), UTC)
        if fmt == "date-time":
            return now.isoformat().replace("+00:00", "Z")
        if fmt == "date":
            return now.date().isoformat()
        if fmt == "uuid":
            return self.src.ids.uuid()
        if fmt == "decimal":
            return f"{self.src.rng.randint(1, 9999)}.{self.src.rng.randint(0, 99):02d}"
        if fmt in ("uri", "url") or name.endswith("url"):
            return f.url() if f is not None else "https://example.com/"
        if fmt == "email" or name.endswith("email"):
            return str(f.email()) if f is not None else "user@example.com"
        if name == "currency" or name.endswith("_currency"):
            return "usd"
        if name == "country":
            return "US"
        if f is None:
            return self.src.ids.base62(10)
        table: dict[str, Callable[[], Any]] = {
            "name": f.name, "first_name": f.first_name, "last_name": f.last_name,
            "full_name": f.name, "phone": f.phone_number, "city": f.city, "state": f.state_abbr,
            "line1": f.street_address, "line2": f.secondary_address, "postal_code": f.postcode,
            "zip": f.postcode, "company": f.company, "title": f.job,
            "description": f.sentence, "username": f.user_name, "login": f.user_name,
        }
        for key, make in table.items():
            if name == key or name.endswith("_" + key):
                return str(make())
        return str(f.word())


def _is_object(node: dict[str, Any]) -> bool:
    return "object" in types(node)


def _is_uuid_like(text: str) -> bool:
    return bool(re.match(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                         r"[0-9a-fA-F]{12}$", text))
