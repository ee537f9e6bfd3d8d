"""Compile a rule's ``respond`` section once, at load time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from jinja2 import TemplateSyntaxError

from guard.rules.model import Missing, Respond
from guard.synth.discover import rendered_templates
from guard.synth.handlers import Handler, Registry
from guard.synth.templates import (
    Const,
    Renderable,
    compile_file,
    compile_string,
    compile_tree,
    make_env,
)


@dataclass(frozen=True)
class Body:
    """A compiled body: ``data`` bodies are serialized as JSON; text bodies are sent as is."""

    template: Renderable
    data: bool


@dataclass(frozen=True)
class CompiledMissing:
    status: int
    headers: tuple[tuple[str, Renderable], ...]
    body: Body | None


@dataclass(frozen=True)
class CompiledRespond:
    status: int
    headers: tuple[tuple[str, Renderable], ...]
    body: Body | None
    content_type: str | None
    handler: Handler | None
    store: tuple[str, Renderable | None] | None
    from_store: tuple[str, Renderable, CompiledMissing] | None
    # The compiler of the rule set this belongs to: handlers render templates by name
    # through it, so a reloaded rule set also brings its own freshly read templates.
    templates: RespondCompiler | None = None
    base_dir: Path = Path()  # the rule file's folder: where named templates are looked for


class RespondCompiler:
    """Compiles respond sections and template files (each file once) in one Jinja sandbox.

    ``templates`` maps a provider name to its templates folder (``github`` ->
    ``guard/providers/github/templates``): the template ``github/issue.yaml`` is found
    there when the rule file has none of its own. ``handlers`` is what a ``handler:``
    name resolves through.

    Raises ``ValueError((field, message))`` so the loader can point at the field.
    """

    def __init__(self, templates: Mapping[str, Path],
                 handlers: Registry | None = None) -> None:
        self.env = make_env()
        self.templates = dict(templates)
        self.handlers = handlers if handlers is not None else Registry()
        self._files: dict[Path, Body] = {}
        self.consulted: set[Path] = set()  # every template path looked at, found or not

    def compile(self, respond: Respond, base_dir: Path, rule_id: str) -> CompiledRespond:
        """Raises :class:`RespondErrors` naming every field at fault, not only the first."""
        errors: list[tuple[str, str]] = []

        def part[T](fn: Callable[[], T]) -> T | None:
            try:
                return fn()
            except RespondErrors as e:
                errors.extend(e.problems)
            except ValueError as e:
                errors.append(e.args if len(e.args) == 2 else ("respond", str(e)))
            return None

        handler = None
        if respond.handler is not None:
            handler = part(lambda: self._handler(respond.handler or "", base_dir))
        from_store = None
        if respond.from_store is not None:
            fs = respond.from_store
            fs_id = part(lambda: self._string("from_store.id", fs.id))
            missing = part(lambda: self._missing(fs.missing, base_dir))
            if fs_id is not None and missing is not None:
                from_store = (fs.collection, fs_id, missing)
        store = None
        if respond.store is not None:
            s = respond.store
            id_t = part(lambda: self._string("store.id", s.id or "")) if s.id else None
            store = (s.collection, id_t)
        headers = part(lambda: self._headers(respond.headers))
        body = part(lambda: self._body(respond.body, respond.template, base_dir))
        if errors:
            raise RespondErrors(errors)
        return CompiledRespond(
            status=respond.status,
            headers=headers or (),
            body=body,
            content_type=respond.content_type,
            handler=handler,
            store=store,
            from_store=from_store,
            templates=self,
            base_dir=base_dir,
        )

    def _handler(self, name: str, base_dir: Path) -> Any:
        try:
            handler = self.handlers.resolve(name)
        except LookupError as e:
            raise ValueError("handler", str(e)) from None
        for template in rendered_templates(handler):
            try:
                self.template(template, base_dir)
            except ValueError as e:
                raise ValueError("handler", f"handler {name} renders "
                                 f"{e.args[-1]}") from None
        return handler

    def template(self, name: str, base_dir: Path | None = None) -> Body:
        """A template file by name: looked up next to the rule file, in a ``templates/`` folder
        next to it, then (``<provider>/<file>``) in that built-in provider's templates."""
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError("template", f"template {name!r} must be a relative path inside "
                             "the rule directory or a provider's templates")
        candidates = [base_dir / name, base_dir / "templates" / name] if base_dir else []
        provider, *rest = PurePosixPath(name).parts
        if rest and provider in self.templates:
            candidates.append(self.templates[provider].joinpath(*rest))
        self.consulted.update(candidates)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            where = ", ".join(str(p) for p in candidates)
            raise ValueError("template", f"template {name!r} not found (looked for {where})")
        cached = self._files.get(path)
        if cached is None:
            try:
                renderable, data = compile_file(self.env, path)
            except TemplateSyntaxError as e:
                raise ValueError("template", f"template {path}:{e.lineno}: {e.message}") from None
            except yaml.YAMLError as e:
                raise ValueError("template", f"template {path}: invalid YAML: {e}") from None
            cached = self._files[path] = Body(renderable, data)
        return cached

    def _body(self, body: Any, template: str | None, base_dir: Path) -> Body | None:
        if template is not None:
            return self.template(template, base_dir)
        if body is None:
            return None
        try:
            return Body(compile_tree(self.env, body), not isinstance(body, str))
        except TemplateSyntaxError as e:
            found = list(self._broken_leaves(body, "body"))
            raise RespondErrors(found or [("body", f"template syntax error: {e.message}")]
                                ) from None

    def _broken_leaves(self, tree: Any, where: str) -> Iterator[tuple[str, str]]:
        """Every string of a body tree that does not compile, at its own field."""
        if isinstance(tree, dict):
            for k, v in tree.items():
                yield from self._broken_leaves(v, f"{where}.{k}")
        elif isinstance(tree, list):
            for i, v in enumerate(tree):
                yield from self._broken_leaves(v, f"{where}.{i}")
        elif isinstance(tree, str):
            try:
                compile_string(self.env, tree)
            except TemplateSyntaxError as e:
                yield where, f"template syntax error: {e.message}"

    def _missing(self, missing: Missing, base_dir: Path) -> CompiledMissing:
        return CompiledMissing(missing.status, self._headers(missing.headers),
                               self._body(missing.body, missing.template, base_dir))

    def _headers(self, headers: dict[str, str]) -> tuple[tuple[str, Renderable], ...]:
        out, errors = [], []
        for k, v in headers.items():
            try:
                out.append((k, self._string(f"headers.{k}", str(v))))
            except ValueError as e:
                errors.append(e.args)
        if errors:
            raise RespondErrors(errors)
        return tuple(out)

    def _string(self, where: str, text: str) -> Renderable:
        try:
            return compile_string(self.env, text)
        except TemplateSyntaxError as e:
            raise ValueError(where, f"template syntax error: {e.message}") from None


class RespondErrors(ValueError):
    """Every problem of one ``respond`` section: ``problems`` is a list of (field,
    message), the field dotted (``body.a``, ``headers.X-A``)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{w}: {m}" for w, m in problems))
        self.problems = problems


__all__ = ["Body", "CompiledMissing", "CompiledRespond", "Const", "RespondCompiler",
           "RespondErrors"]
