"""Load rule files: parse YAML with positions, validate with pydantic, compile the
matchers. What a ``simulate`` rule answers is compiled by :mod:`guard.synth.responders`
(:func:`guard.packs.load_packs` does both).

Every problem in every file is collected and raised together as one
:class:`~guard.errors.RuleError`, each as ``path:line:column: message``.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guard.errors import Problem, RuleError
from guard.resources import TEMPLATES_FOLDER, builtin_packs
from guard.rules.compiled import CompiledRule, Source, compile_match
from guard.rules.matchers import HostPattern
from guard.rules.model import Case, Pack, Rule
from guard.rules.source import Located, read_yaml
from guard.rules.validate import validate_each, validation_problems

RULE_SUFFIXES = (".yaml", ".yml")
CASE_SUFFIXES = (".cases.yaml", ".cases.yml")
SPEC_SUFFIXES = (".oas.yaml", ".oas.yml", ".openapi.yaml", ".openapi.yml")  # descriptions


@dataclass
class LoadedPack:
    path: str
    pack: Pack
    located: Located
    positions: list[int] = field(default_factory=list)  # each valid rule's index in the file
    case_positions: list[int] = field(default_factory=list)  # each valid test case's index
    openapi: Any = None  # the pack's compiled OpenAPI description (guard.openapi.OpenApi)
    operations: dict[str, Any] = field(default_factory=dict)  # rule id -> OpenAPI operation
    wrap: Any = None  # the provider's wrap of generated answers (guard.openapi.pack.Wrap)
    partition: tuple[str, Any] | None = None  # world_by_header, compiled


@dataclass
class RuleSet:
    """Everything loaded from a set of rule files, the matchers ready for the engine."""

    rules: list[CompiledRule]
    packs: list[LoadedPack] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def by_id(self) -> dict[str, CompiledRule]:
        return {r.id: r for r in self.rules}


def builtin_rule_paths() -> list[Path]:
    """The built-in packs: ``guard/providers/<name>/pack.yaml``."""
    return builtin_packs()


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and directories (``*.yaml``/``*.yml``, sorted, not ``*.cases.yaml`` nor
    OpenAPI descriptions ``*.oas.yaml``/``*.openapi.yaml``, and
    nothing under a ``templates/`` folder: YAML templates live there, beside the rules)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(
                f for f in sorted(p.rglob("*"))
                if f.is_file() and f.name.endswith(RULE_SUFFIXES)
                and not f.name.endswith(CASE_SUFFIXES + SPEC_SUFFIXES)
                and TEMPLATES_FOLDER not in f.relative_to(p).parts[:-1]
            )
        else:
            out.append(p)
    return out


def load_rules(paths: Sequence[str | Path], *, builtin: bool = True) -> RuleSet:
    """Load the built-in packs (unless ``builtin=False``) and then ``paths``, in order.

    Raises :class:`RuleError` listing every problem found in every file.
    """
    ruleset, problems = read_rules(paths, builtin=builtin)
    if problems:
        raise RuleError(problems)
    return ruleset


def read_rules(paths: Sequence[str | Path], *, builtin: bool = True
               ) -> tuple[RuleSet, list[Problem]]:
    """Like :func:`load_rules`, but returns the problems beside the rules that did load
    (so responses can be checked too and every problem reported at once)."""
    with collector_paused():
        return _load(paths, builtin)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Loading builds about a hundred objects per rule and frees none of them; the cyclic
    collector would walk them all again and again (half the load time of a big pack).
    Paused, never left off: the previous state comes back even if loading fails."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(paths: Sequence[str | Path], builtin: bool) -> tuple[RuleSet, list[Problem]]:
    files = (builtin_rule_paths() if builtin else []) + rule_files(paths)
    problems: list[Problem] = []
    loaded: list[LoadedPack] = []
    located_files: list[Located] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            problems.append(Problem(str(path), 1, 1, f"cannot read rule file: {e.strerror or e}"))
            continue
        located = read_yaml(str(path), text)
        problems.extend(located.problems)
        if located.problems:
            continue
        if isinstance(located.data, dict):
            located_files.append(located)
        else:
            problems.append(Problem(str(path), 1, 1, "a rule file is a mapping with 'pack' and "
                                    "'rules' keys"))
            continue
        validated = _validate(located, problems)
        if validated is not None:
            pack, positions, case_positions = validated
            loaded.append(LoadedPack(str(path), pack, located, positions, case_positions))
    _check_unique_ids(located_files, problems)
    rules = _compile(loaded, problems)
    return RuleSet(rules, loaded, [str(f) for f in files]), problems


def _compile(loaded: list[LoadedPack], problems: list[Problem]) -> list[CompiledRule]:
    rules: list[CompiledRule] = []
    seen: set[str] = set()
    host_patterns: dict[str, HostPattern] = {}  # one object per pattern, however many rules
    for lp in loaded:
        for i, rule in zip(lp.positions, lp.pack.rules, strict=True):
            loc: tuple[Any, ...] = ("rules", i)
            line, col = lp.located.where(loc)
            source = Source(lp.path, line, col)
            if rule.id in seen:
                continue  # reported by _check_unique_ids
            seen.add(rule.id)
            hosts = rule.hosts if rule.hosts is not None else lp.pack.hosts
            if not hosts:
                problems.append(lp.located.problem(
                    loc, f"rule {rule.id!r} has no hosts: give 'hosts' in the rule or the pack "
                    "(use '*' for every host)"
                ))
                continue
            try:
                methods, paths, checks = compile_match(rule.match)
            except ValueError as e:
                problems.append(lp.located.problem((*loc, "match", "path"), str(e)))
                continue
            compiled = CompiledRule(
                rule=rule, pack=lp.pack.pack, source=source, order=len(rules),
                hosts=tuple(host_patterns.get(h) or host_patterns.setdefault(h, HostPattern(h))
                            for h in hosts),
                methods=methods, paths=paths, checks=checks,
            )
            rules.append(compiled)
        _faults(lp, [r for r in rules if r.pack == lp.pack.pack])
        if lp.pack.world_by_header is not None:
            _partition(lp, [r for r in rules if r.pack == lp.pack.pack], problems)
        if lp.pack.openapi is not None:
            rules.extend(_compile_openapi(lp, [r for r in rules if r.pack == lp.pack.pack],
                                          len(rules), problems))
    return rules


def _faults(lp: LoadedPack, rules: list[CompiledRule]) -> None:
    """Each simulate rule's faults (its own, else the pack's) and the error shape they
    answer in: the shape of the rule's handler's provider (``stripe.*``), else the pack's
    OpenAPI ``errors``, a shape named like the pack, or RFC 9457."""
    from guard.openapi.problems import SHAPES

    shape = lp.pack.openapi.errors if lp.pack.openapi is not None else (
        lp.pack.pack if lp.pack.pack in SHAPES else "rfc9457")
    for rule in rules:
        handler = rule.rule.respond.handler if rule.rule.respond is not None else None
        provider = handler.split(".", 1)[0] if handler else None
        rule.error_shape = provider if provider in SHAPES else shape
        if rule.action == "simulate":
            rule.faults = rule.rule.faults or lp.pack.faults


def _partition(lp: LoadedPack, own: list[CompiledRule], problems: list[Problem]) -> None:
    part = lp.pack.world_by_header
    assert part is not None
    try:
        pattern = re.compile(part.pattern)
    except re.error as e:
        problems.append(lp.located.problem(("world_by_header", "pattern"),
                                           f"bad regular expression: {e}"))
        return
    lp.partition = (part.header.lower(), pattern)
    for rule in own:
        rule.partition = lp.partition


def _compile_openapi(lp: LoadedPack, own: list[CompiledRule], first_order: int,
                     problems: list[Problem]) -> list[CompiledRule]:
    """One rule per operation of the pack's OpenAPI description (guard/openapi/pack.py)."""
    from guard.openapi.api import Settings
    from guard.openapi.pack import build_rules, load_api, provider_wrap

    source_model = lp.pack.openapi
    assert source_model is not None
    base = Path(lp.path).parent
    loc: tuple[Any, ...] = ("openapi",)
    if not lp.pack.hosts:
        problems.append(lp.located.problem(loc, "a pack with an openapi source needs 'hosts'"))
        return []
    paths: dict[str, Path | None] = {}
    for name in ("spec", "fixtures"):
        value = getattr(source_model, name)
        paths[name] = None if value is None else _data_path(base, value)
        if value is not None and paths[name] is None:
            problems.append(lp.located.problem((*loc, name), f"{name} must be a path inside "
                                               "the rule file's folder, or guard:PATH inside "
                                               "guard's own package"))
            return []
    spec_path, fixtures = paths["spec"], paths["fixtures"]
    assert spec_path is not None
    supplements: list[Path] = []
    for i, value in enumerate(source_model.supplements):
        found = _data_path(base, value)
        if found is None:
            problems.append(lp.located.problem((*loc, "supplements", i), "a supplement must "
                                               "be a path inside the rule file's folder, or "
                                               "guard:PATH inside guard's own package"))
            return []
        supplements.append(found)
    settings = Settings(pack=lp.pack.pack, errors=source_model.errors,
                        paging=source_model.paging, closed=source_model.closed,
                        strict=source_model.strict, fixtures=fixtures,
                        base_path=source_model.base_path, populate=source_model.populate)
    try:
        api = load_api(spec_path, settings, supplements)
        wrap = provider_wrap(source_model.provider, api)
    except RuleError as e:
        problems.extend(e.problems)
        return []
    except (ValueError, OSError) as e:
        problems.append(lp.located.problem(loc, f"openapi: {e}"))
        return []
    line, col = lp.located.where(loc)
    rules, lp.operations = build_rules(
        api, pack=lp.pack.pack, prefix=source_model.rule_prefix or f"{lp.pack.pack}.openapi",
        hosts=lp.pack.hosts, source=Source(lp.path, line, col),
        first_order=first_order, own=own)
    lp.openapi, lp.wrap = api, wrap
    for rule in rules:
        rule.partition = lp.partition
    _faults(lp, rules)
    return rules


def _data_path(base: Path, value: str) -> Path | None:
    """A data file a pack names: relative to the pack, or ``guard:PATH`` inside guard's
    package (built-in data any pack may use). ``None`` for a path that leaves either."""
    root = base
    if value.startswith("guard:"):
        root, value = Path(__file__).resolve().parent.parent, value.removeprefix("guard:")
    p = Path(value)
    if p.is_absolute() or ".." in p.parts or not value:
        return None
    return root / p


def _check_unique_ids(files: list[Located], problems: list[Problem]) -> None:
    """Rule ids are unique across every loaded file (checked on the raw data, so a
    duplicate is reported even when one of the two rules has other problems)."""
    seen: dict[str, str] = {}
    for located in files:
        raw_rules = located.data.get("rules")
        if not isinstance(raw_rules, list):
            continue
        for i, raw in enumerate(raw_rules):
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(rule_id, str):
                continue
            line, col = located.where(("rules", i))
            if rule_id in seen:
                problems.append(located.problem(("rules", i, "id"), f"duplicate rule id "
                                                f"{rule_id!r} (first defined at {seen[rule_id]})"))
            else:
                seen[rule_id] = f"{located.path}:{line}:{col}"


def _validate(located: Located,
              problems: list[Problem]) -> tuple[Pack, list[int], list[int]] | None:
    """Validate the pack, then each rule and each test case on its own, so that one bad
    rule does not hide the problems of the others. Returns the pack holding only the
    valid rules and cases."""
    data = dict(located.data)
    raw_rules = data.pop("rules", [])
    raw_tests = data.pop("tests", [])
    try:
        pack = Pack.model_validate(data)
    except ValidationError as e:
        problems.extend(validation_problems(located, e))
        return None
    rules = validate_each(located, Rule, raw_rules, ("rules",), problems)
    tests = validate_each(located, Case, raw_tests, ("tests",), problems)
    if rules is None:
        return None
    pack.rules = rules[0]
    pack.tests = tests[0] if tests is not None else []
    return pack, rules[1], tests[1] if tests is not None else []
