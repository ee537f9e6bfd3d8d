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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError
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
        self._fn: Callable[..., Any] = env.compile_expression(source, undefined_to_none=False)

    def render(self, context: Context) -> Any:
        value = self._fn(**context)
        if isinstance(value, StrictUndefined):
            str(value)  # raises UndefinedError with Jinja's own message
        return value


class Text:
    def __init__(self, env: ImmutableSandboxedEnvironment, source: str) -> None:
        self._t = env.from_string(source)

    def render(self, context: Context) -> str:
        return self._t.render(context)


class Tree:
    """A dict or list whose members are renderables."""

    def __init__(self, node: dict[Any, Renderable] | list[Renderable]) -> None:
        self._node = node

    def render(self, context: Context) -> Any:
        if isinstance(self._node, dict):
            return {k.render(context): v.render(context) for k, v in self._node.items()}
        return [v.render(context) for v in self._node]


class JsonText:
    """A ``*.json.j2`` template: rendered as text, then parsed so that broken JSON fails here."""

    def __init__(self, env: ImmutableSandboxedEnvironment, source: str, name: str) -> None:
        self._t = env.from_string(source)
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


def compile_tree(env: ImmutableSandboxedEnvironment, data: Any) -> Renderable:
    """Compile a data tree; raises ``jinja2.TemplateSyntaxError`` on a bad leaf."""
    if isinstance(data, dict):
        if not any(_has_template(v) or _has_template(k) for k, v in data.items()):
            return Const(data)
        return Tree({compile_tree(env, k): compile_tree(env, v) for k, v in data.items()})
    if isinstance(data, list):
        if not any(_has_template(v) for v in data):
            return Const(data)
        return Tree([compile_tree(env, v) for v in data])
    if isinstance(data, str):
        return compile_string(env, data)
    return Const(data)


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
    "Tree",
    "compile_file",
    "compile_string",
    "compile_tree",
    "make_env",
]
