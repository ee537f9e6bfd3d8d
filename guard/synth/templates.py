"""Compiled templates: data trees with Jinja leaves, JSON text templates and text templates.

A *data tree* is YAML (or inline ``body:``) whose string leaves may hold Jinja.
A leaf that is exactly one ``{{ expression }}`` keeps the expression's type, so
``amount: "{{ request.form.amount | int }}"`` is a number and
``metadata: "{{ request.form.metadata or {} }}"`` is an object. The tree is
rendered to Python data and serialized once: no hand-escaped JSON.

>>> env = make_env()
>>> t = compile_tree(env, {"id": "{{ 'cus_' ~ n }}", "n": "{{ n * 2 }}", "s": "a {{ n }}"})
>>> t.render({"n": 21})
{'id': 'cus_21', 'n': 42, 's': 'a 21'}
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml
from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

_EXPR = re.compile(r"^\s*\{\{(?P<e>.*)\}\}\s*$", re.DOTALL)

Context = Mapping[str, Any]


class Renderable(Protocol):
    def render(self, context: Context) -> Any: ...


def make_env() -> ImmutableSandboxedEnvironment:
    """The one Jinja environment templates run in: sandboxed, strict, no autoescape.

    Immutable sandbox: templates cannot mutate lists or dicts they are given
    (so they cannot corrupt the world store through a view).
    """
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}
    return env


# Compiling a Jinja template costs about a millisecond; packs repeat the same leaves
# ("{{ captures.id }}") in rule after rule, so each environment compiles a source once.
_COMPILED: weakref.WeakKeyDictionary[Environment, dict[tuple[str, str], Any]] = (
    weakref.WeakKeyDictionary())


def _cached(env: Environment, kind: str, source: str, build: Callable[[], Any]) -> Any:
    table = _COMPILED.get(env)
    if table is None:
        table = _COMPILED[env] = {}
    key = (kind, source)
    if key not in table:
        table[key] = build()
    return table[key]


def _template(env: Environment, source: str) -> Template:
    template: Template = _cached(env, "template", source, lambda: env.from_string(source))
    return template


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


class Const:
    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, context: Context) -> Any:
        return self.value


class Expr:
    """``{{ expr }}`` alone: evaluates to a native value."""

    def __init__(self, env: ImmutableSandboxedEnvironment, source: str) -> None:
        self._fn: Callable[..., Any] = _cached(
            env, "expression", source,
            lambda: env.compile_expression(source, undefined_to_none=False))

    def render(self, context: Context) -> Any:
        value = self._fn(**context)
        if isinstance(value, StrictUndefined):
            str(value)  # raises UndefinedError with Jinja's own message
        return value


class Text:
    def __init__(self, env: ImmutableSandboxedEnvironment, source: str) -> None:
        self._t = _template(env, source)

    def render(self, context: Context) -> str:
        return self._t.render(context)


class JsonText:
    """A ``*.json.j2`` template: rendered as text, then parsed so that broken JSON fails here."""

    def __init__(self, env: ImmutableSandboxedEnvironment, source: str, name: str) -> None:
        self._t = _template(env, source)
        self._name = name

    def render(self, context: Context) -> Any:
        text = self._t.render(context)
        try:
            return json.loads(text)
        except ValueError as e:
            raise ValueError(f"template {self._name} rendered invalid JSON: {e}") from None


def compile_string(env: ImmutableSandboxedEnvironment, text: str) -> Renderable:
    if not is_template(text):
        return Const(text)
    m = _EXPR.match(text)
    if m and "{{" not in m.group("e") and "}}" not in m.group("e"):
        return Expr(env, m.group("e"))
    return Text(env, text)


class Slot:
    """A leaf of a compiled tree: its value is filled in by the tree's program."""

    def __init__(self, index: int) -> None:
        self.index = index


class TreeProgram:
    """A data tree whose template leaves all run in ONE Jinja render.

    Rendering a Jinja template costs a context per call; a Stripe object has a
    dozen templated leaves, so rendering them one by one dominated the cost of a
    simulated request. Here every leaf becomes a statement of a single template
    that hands its value to ``__emit(slot, value)``; the tree is then assembled
    from the slots. Expression leaves keep their native types.
    """

    def __init__(self, env: ImmutableSandboxedEnvironment, shape: Any,
                 leaves: list[tuple[str, str]]) -> None:
        parts = []
        for i, (kind, source) in enumerate(leaves):
            if kind == "expr":
                parts.append(f"{{{{ __emit({i}, ({source})) }}}}")
            else:
                parts.append(f"{{% set __t{i} %}}{source}{{% endset %}}"
                             f"{{{{ __emit({i}, __t{i}) }}}}")
        self._template = _template(env, "".join(parts))
        self._shape = shape
        self._size = len(leaves)

    def render(self, context: Context) -> Any:
        values: list[Any] = [None] * self._size

        def emit(index: int, value: Any) -> str:
            if isinstance(value, Undefined):
                str(value)  # raises UndefinedError with Jinja's own message
            values[index] = value
            return ""

        self._template.render({**context, "__emit": emit})
        return _assemble(self._shape, values)


def _assemble(shape: Any, values: list[Any]) -> Any:
    if isinstance(shape, Slot):
        return values[shape.index]
    if isinstance(shape, dict):
        return {_assemble(k, values): _assemble(v, values) for k, v in shape.items()}
    if isinstance(shape, list):
        return [_assemble(v, values) for v in shape]
    return shape


def compile_tree(env: ImmutableSandboxedEnvironment, data: Any) -> Renderable:
    """Compile a data tree; raises ``jinja2.TemplateSyntaxError`` on a bad leaf."""
    if isinstance(data, str):
        return compile_string(env, data)
    if not _has_template(data):
        return Const(data)
    leaves: list[tuple[str, str]] = []
    shape = _shape(env, data, leaves)
    return TreeProgram(env, shape, leaves)


def _shape(env: ImmutableSandboxedEnvironment, data: Any, leaves: list[tuple[str, str]]) -> Any:
    if isinstance(data, dict):
        return {_shape(env, k, leaves): _shape(env, v, leaves) for k, v in data.items()}
    if isinstance(data, list):
        return [_shape(env, v, leaves) for v in data]
    if isinstance(data, str) and is_template(data):
        leaf = compile_string(env, data)  # compiled alone first: precise syntax errors
        m = _EXPR.match(data)
        if isinstance(leaf, Expr) and m is not None:
            leaves.append(("expr", m.group("e")))
        else:
            leaves.append(("text", data))
        return Slot(len(leaves) - 1)
    return data


def _has_template(data: Any) -> bool:
    if isinstance(data, str):
        return is_template(data)
    if isinstance(data, dict):
        return any(_has_template(k) or _has_template(v) for k, v in data.items())
    if isinstance(data, list):
        return any(_has_template(v) for v in data)
    return False


def compile_file(env: ImmutableSandboxedEnvironment, path: Path) -> tuple[Renderable, bool]:
    """Compile a template file. Returns the renderable and whether it yields data (not text).

    Raises ``OSError``, ``yaml.YAMLError`` or ``jinja2.TemplateSyntaxError``.
    """
    text = path.read_text(encoding="utf-8")
    name = path.name
    if name.endswith((".yaml", ".yml")):
        return compile_tree(env, yaml.safe_load(text)), True
    if name.endswith(".json.j2") or name.endswith(".json"):
        return JsonText(env, text, name), True
    return Text(env, text), False


__all__ = [
    "Const",
    "Expr",
    "JsonText",
    "Renderable",
    "TemplateSyntaxError",
    "Text",
    "TreeProgram",
    "compile_file",
    "compile_string",
    "compile_tree",
    "make_env",
]
