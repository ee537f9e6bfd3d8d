"""Find rule test cases and the rules they run against.

Cases live in a pack's ``tests:`` list or in ``*.cases.yaml`` files next to the
rules (a mapping with ``cases:``, or a bare list). Each pack's cases form one
group, and so does each case file: a group runs in order against one fresh
world, so a "create" case can be followed by a "retrieve" case.

Which files: no PATH means the built-in packs and the case files among them. A
directory contributes its rule files and its case files; ``x.cases.yaml`` is a
case file; any other file is a rule file, and ``x.cases.yaml`` beside ``x.yaml``
comes with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from guard.errors import Problem, RuleError
from guard.packs import Packs, load_packs
from guard.resources import builtin_packs
from guard.rules.loader import CASE_SUFFIXES, RuleSet, rule_files
from guard.rules.model import Case, CaseFile
from guard.rules.source import Located, read_yaml
from guard.rules.validate import validate_each, validation_problems


@dataclass(frozen=True)
class LocatedCase:
    """A case and where it is written (``path:line:column``)."""

    case: Case
    where: str


@dataclass
class CaseGroup:
    """Cases that share one world, run in file order. ``pack`` is set for a pack's tests."""

    label: str
    path: str
    cases: list[LocatedCase] = field(default_factory=list)
    pack: str | None = None


@dataclass
class Suite:
    """The loaded rules and responses, the case groups to run, and the names of the packs
    under test (for coverage)."""

    loaded: Packs
    groups: list[CaseGroup]
    packs: list[str]

    @property
    def ruleset(self) -> RuleSet:
        return self.loaded.ruleset

    @property
    def count(self) -> int:
        return sum(len(g.cases) for g in self.groups)


def collect(paths: Sequence[str | Path], *, builtin: bool = True) -> Suite:
    """Load rules and cases. Raises :class:`RuleError` with every problem in rule files and
    case files together, each as ``path:line:column: message``."""
    rule_paths, case_paths = split_paths(paths)
    problems: list[Problem] = []
    try:
        loaded: Packs | None = load_packs(rule_paths, builtin=builtin)
    except RuleError as e:
        problems.extend(e.problems)
        loaded = None
    case_groups = [g for p in case_paths if (g := read_case_file(p, problems)) is not None]
    if problems or loaded is None:
        raise RuleError(problems)
    ruleset = loaded.ruleset
    # No PATH: the built-in packs are under test; otherwise only the packs named.
    under_test = {str(p) for p in (rule_files(rule_paths) if paths else builtin_packs())}
    groups: list[CaseGroup] = []
    packs: list[str] = []
    for lp in ruleset.packs:
        if lp.path not in under_test:
            continue
        packs.append(lp.pack.pack)
        group = CaseGroup(lp.pack.pack, lp.path, pack=lp.pack.pack)
        for i, case in zip(lp.case_positions, lp.pack.tests, strict=True):
            group.cases.append(LocatedCase(case, _where(lp.located, ("tests", i))))
        groups.append(group)
    return Suite(loaded, groups + case_groups, packs)


def split_paths(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """(rule paths to load, case files to read) for the given PATHs (see module docs)."""
    if not paths:
        return [], [c for p in builtin_packs() if (c := _sibling_cases(p)).is_file()]
    rules: list[Path] = []
    cases: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            rules.append(p)
            cases.extend(_case_files_in(p))
        elif p.name.endswith(CASE_SUFFIXES):
            cases.append(p)
        else:
            rules.append(p)
            sibling = _sibling_cases(p)
            if sibling.is_file():
                cases.append(sibling)
    unique = {c.resolve(): c for c in reversed(cases)}  # first mention wins
    return rules, list(reversed(unique.values()))


def read_case_file(path: Path, problems: list[Problem]) -> CaseGroup | None:
    """Read and validate one ``*.cases.yaml`` file; problems go to ``problems``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        problems.append(Problem(str(path), 1, 1, f"cannot read case file: {e.strerror or e}"))
        return None
    located = read_yaml(str(path), text)
    if located.problems:
        problems.extend(located.problems)
        return None
    data = located.data
    where: tuple[str, ...] = ()
    if isinstance(data, dict):
        header = {k: v for k, v in data.items() if k != "cases"}
        try:
            CaseFile.model_validate({**header, "cases": []})
        except ValidationError as e:
            problems.extend(validation_problems(located, e))
            return None
        if "cases" not in data:
            problems.append(Problem(str(path), 1, 1, "a case file needs a 'cases' list"))
            return None
        data, where = data["cases"], ("cases",)
    elif not isinstance(data, list):
        problems.append(Problem(str(path), 1, 1, "a case file is a list of cases, or a mapping "
                                "with a 'cases' list"))
        return None
    validated = validate_each(located, Case, data, where, problems)
    if validated is None:
        return None
    group = CaseGroup(str(path), str(path))
    for case, i in zip(*validated, strict=True):
        group.cases.append(LocatedCase(case, _where(located, (*where, i))))
    return group


def _sibling_cases(pack: Path) -> Path:
    """``crm.yaml`` -> ``crm.cases.yaml`` (``pack.yaml`` -> ``pack.cases.yaml``)."""
    return pack.with_name(pack.name.rsplit(".", 1)[0] + ".cases.yaml")


def _case_files_in(directory: Path) -> list[Path]:
    return [f for f in sorted(directory.rglob("*"))
            if f.is_file() and f.name.endswith(CASE_SUFFIXES)]


def _where(located: Located, loc: tuple[str | int, ...]) -> str:
    line, col = located.where(loc)
    return f"{located.path}:{line}:{col}"
