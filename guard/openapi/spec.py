"""Load an OpenAPI 3.0/3.1 description (JSON or YAML, optionally gzipped) and resolve
``$ref`` pointers in it.

A description that does not load raises :class:`~guard.errors.RuleError` whose problems
read ``file:line:column: at #/json/pointer: what is wrong``, like rule files. Positions are
found only when something is wrong (parsing a 6 MB description with positions is slow).

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "api.json").write_text(json.dumps({"openapi": "3.1.0", "info": {},
...     "paths": {"/pets": {"get": {"responses": {"200": {"description": "ok",
...     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}}}}},
...     "components": {"schemas": {"Pet": {"type": "object"}}}}))
>>> spec = load_spec(d / "api.json")
>>> spec.resolve({"$ref": "#/components/schemas/Pet"})
{'type': 'object'}
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from guard.errors import Problem, RuleError

METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
_VERSION = re.compile(r"^3\.[01]\.\d+")
_MAX_BYTES = 64 * 1024 * 1024  # a description larger than this is refused, not parsed


def pointer(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """``("paths", "/v1/x", "get")`` -> ``#/paths/~1v1~1x/get`` (RFC 6901 escaping)."""
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def unpointer(text: str) -> list[str]:
    body = text[1:] if text.startswith("#") else text
    if not body:
        return []
    if not body.startswith("/"):
        raise ValueError(f"bad JSON pointer {text!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in body[1:].split("/")]


@dataclass
class Spec:
    """A loaded description: the document, where it came from, and a ``$ref`` resolver."""

    path: Path
    document: dict[str, Any]
    version: str
    _others: dict[Path, Any] = field(default_factory=dict, repr=False)

    @property
    def title(self) -> str:
        return str((self.document.get("info") or {}).get("title") or self.path.name)

    @property
    def is_31(self) -> bool:
        return self.version.startswith("3.1")

    def resolve(self, node: Any, *, depth: int = 0) -> Any:
        """Follow ``$ref`` (repeatedly) until a node that is not a reference."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            node = self.lookup(node["$ref"])
            seen += 1
            if seen > 64:
                raise ValueError("a $ref chain longer than 64 links (a cycle of references?)")
        return node

    def lookup(self, ref: str) -> Any:
        """The node a ``$ref`` names: ``#/components/schemas/X`` or ``other.yaml#/X``."""
        target, _, frag = ref.partition("#")
        doc: Any = self.document if not target else self._other(target)
        for part in unpointer("#" + frag):
            if isinstance(doc, dict) and part in doc:
                doc = doc[part]
            elif (isinstance(doc, list) and part.isascii() and part.isdigit()
                  and int(part) < len(doc)):
                doc = doc[int(part)]
            else:
                raise ValueError(f"$ref {ref!r} names nothing: no {part!r}")
        return doc

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
        """``(method, path, operation, path item)`` for every operation, in document order."""
        for path, item in (self.document.get("paths") or {}).items():
            item = self.resolve(item)
            for method in METHODS:
                op = item.get(method)
                if isinstance(op, dict):
                    yield method.upper(), path, op, item

    def _other(self, target: str) -> Any:
        if "://" in target or target.startswith("/"):
            raise ValueError(f"$ref {target!r}: only files beside the description are read")
        path = (self.path.parent / target).resolve()
        if self.path.parent.resolve() not in path.parents:
            raise ValueError(f"$ref {target!r} leaves the description's folder")
        if path not in self._others:
            self._others[path] = _parse(path, _read(path))
        return self._others[path]


_CACHE: dict[tuple[str, int, int], Spec] = {}
_MERGED: dict[tuple[int, ...], Spec] = {}


def load_spec(path: str | Path, supplements: tuple[Path, ...] | list[Path] = ()) -> Spec:
    """Load and check a description (cached per file, size and modification time), with
    the operations and component schemas of ``supplements`` joined to it: a path or schema
    the description has keeps its own; a supplement's ``$ref`` may name the description's
    components (Stripe's operations derived from its SDK, tools/stripe_sdk_supplement.py).

    Raises :class:`RuleError` listing every problem found, each located in its file.
    """
    spec = _load_one(Path(path))
    if not supplements:
        return spec
    parts = [spec] + [_load_one(Path(p), base=spec) for p in supplements]
    key = tuple(id(p) for p in parts)
    merged = _MERGED.get(key)
    if merged is None:
        merged = Spec(spec.path, _merge([p.document for p in parts],
                                        [p.path.name for p in parts]), spec.version)
        _MERGED[key] = merged
    return merged


def _merge(docs: list[dict[str, Any]], names: list[str] | None = None) -> dict[str, Any]:
    """The first document with the others' paths, methods and component schemas added;
    ``names``: the files', recorded in each added operation's ``x-guardFrom``."""
    first = docs[0]
    paths: dict[str, Any] = dict(first.get("paths") or {})
    components: dict[str, Any] = dict(first.get("components") or {})
    schemas: dict[str, Any] = dict(components.get("schemas") or {})
    for i, doc in enumerate(docs[1:], 1):
        for p, item in (doc.get("paths") or {}).items():
            if names is not None and isinstance(item, dict):
                item = {k: {**v, "x-guardFrom": names[i]}
                        if k in METHODS and isinstance(v, dict) else v
                        for k, v in item.items()}
            if p not in paths:
                paths[p] = item
            elif isinstance(paths[p], dict) and isinstance(item, dict):
                paths[p] = {**item, **paths[p]}
        for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
            schemas.setdefault(name, schema)
    components["schemas"] = schemas
    return {**first, "paths": paths, "components": components}


def _load_one(path: Path, base: Spec | None = None) -> Spec:
    try:
        st = path.stat()
    except OSError as e:
        raise RuleError([Problem(str(path), 1, 1, f"cannot read OpenAPI description: "
                                 f"{e.strerror or e}")]) from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        raw = _read(path)
        doc = _parse(path, raw)
    except ValueError as e:
        line, col = e.args[1] if len(e.args) > 1 else (1, 1)
        raise RuleError([Problem(str(path), line, col, str(e.args[0]))]) from None
    problems = _check(path, doc, base.document if base is not None else None)
    if problems:
        located = _Locator(path, raw)
        raise RuleError([located.problem(where, message) for where, message in problems])
    spec = Spec(path, doc, str(doc["openapi"]))
    _CACHE[key] = spec
    return spec


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
        if data[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as g:
                data = g.read(_MAX_BYTES + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"cannot read OpenAPI description: {e}") from None
    if len(data) > _MAX_BYTES:
        raise ValueError(f"OpenAPI description larger than {_MAX_BYTES // 2**20} MiB")
    return data


def _parse(path: Path, raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 (byte {e.start})") from None
    name = path.name.removesuffix(".gz")
    if name.endswith(".json") or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON: {e.msg}", (e.lineno, e.colno)) from None
    try:
        return yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise ValueError(f"invalid YAML: {getattr(e, 'problem', None) or e}", where) from None


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check(path: Path, doc: Any, base: dict[str, Any] | None = None
           ) -> list[tuple[tuple[str | int, ...], str]]:
    """Structural problems, each with the pointer it concerns. ``base``: the description a
    supplement joins, whose components the supplement's ``$ref``s may name."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if not isinstance(doc, dict):
        return [((), "an OpenAPI description is a mapping with 'openapi', 'info' and 'paths'")]
    version = doc.get("openapi")
    if not isinstance(version, str) or not _VERSION.match(version):
        hint = " (Swagger 2.0 is not supported: convert it to OpenAPI 3)" if "swagger" in doc \
            else ""
        return [(("openapi",) if "openapi" in doc else (),
                 f"'openapi' must be a 3.0.x or 3.1.x version, got {version!r}{hint}")]
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return [(("paths",) if "paths" in doc else (), "'paths' must be a mapping")]
    spec = Spec(path, doc if base is None else _merge([doc, base]), version)
    for p, item in paths.items():
        if not isinstance(p, str) or not p.startswith("/"):
            out.append((("paths", str(p)), "a path must start with '/'"))
            continue
        if not isinstance(item, dict):
            out.append((("paths", p), "a path item must be a mapping"))
            continue
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where: tuple[str | int, ...] = ("paths", p, method)
            if not isinstance(op, dict):
                out.append((where, "an operation must be a mapping"))
            elif not isinstance(op.get("responses", {}), dict):
                out.append(((*where, "responses"), "'responses' must be a mapping"))
    for where, ref in _refs(doc, ()):
        try:
            spec.lookup(ref)
        except ValueError as e:
            out.append((where, str(e)))
    return out


def _refs(node: Any, where: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(node, where)]
    while stack:
        n, w = stack.pop()
        if isinstance(n, dict):
            ref = n.get("$ref")
            if isinstance(ref, str):
                yield (*w, "$ref"), ref
            elif "$ref" in n:
                yield (*w, "$ref"), f"{ref!r} (a $ref must be a string)"
            stack.extend((v, (*w, k)) for k, v in n.items() if isinstance(v, (dict, list)))
        elif isinstance(n, list):
            stack.extend((v, (*w, i)) for i, v in enumerate(n) if isinstance(v, (dict, list)))


class _Locator:
    """Line and column of a JSON pointer in the raw file (for error messages only)."""

    def __init__(self, path: Path, raw: bytes) -> None:
        self.path = path
        try:
            self.root: Any = yaml.compose(raw.decode("utf-8"), Loader=_SafeLoader)
        except (yaml.YAMLError, UnicodeDecodeError):
            self.root = None

    def problem(self, where: tuple[str | int, ...], message: str) -> Problem:
        line, col = self.where(where)
        return Problem(str(self.path), line, col, f"at {pointer(where)}: {message}")

    def where(self, parts: tuple[str | int, ...]) -> tuple[int, int]:
        node, best = self.root, (1, 1)
        for part in parts:
            if isinstance(node, yaml.MappingNode):
                found = None
                for k, v in node.value:
                    if str(k.value) == str(part):
                        found = (k, v)
                        break
                if found is None:
                    break
                best = (found[0].start_mark.line + 1, found[0].start_mark.column + 1)
                node = found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                    and part < len(node.value):
                node = node.value[part]
                best = (node.start_mark.line + 1, node.start_mark.column + 1)
            else:
                break
        return best
