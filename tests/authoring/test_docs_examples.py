"""The guide's worked examples are real files that guard check and guard test pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from authoring_helpers import guard

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
GUIDE = ROOT / "docs" / "rules.md"


def example_packs() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".cases.yaml"))


def test_there_are_the_three_worked_examples():
    names = {p.name for p in example_packs()}
    assert {"internal-readonly.yaml", "helpdesk-writes.yaml", "exfiltration.yaml"} <= names


@pytest.mark.parametrize("path", example_packs(), ids=lambda p: p.name)
def test_each_example_passes_guard_check_and_guard_test(path, capsys):
    code, out, err = guard(capsys, "check", str(path))
    assert code == 0, err
    code, out, err = guard(capsys, "test", str(path), "--coverage")
    assert code == 0, out + err
    assert out.splitlines()[-2].endswith(" 0 failed"), out
    assert "not exercised" not in out, out


def test_the_guide_links_every_example_and_the_readme_links_the_guide():
    guide = GUIDE.read_text()
    for path in example_packs():
        assert f"(examples/{path.name})" in guide, path.name
    for link in re.findall(r"\]\((examples/[^)#]+)\)", guide):
        assert (GUIDE.parent / link).exists(), link
    assert "(docs/rules.md)" in (ROOT / "README.md").read_text()


def test_yaml_shown_in_the_guide_examples_section_is_in_the_example_files():
    """The snippets in 'Worked examples' are excerpts of the tested files, not paraphrases."""
    guide = GUIDE.read_text()
    section = guide[guide.index("## 14. Worked examples"):]
    files = "\n".join(p.read_text() for p in EXAMPLES.rglob("*.yaml"))
    for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            if line.strip() and "..." not in line and not line.strip().startswith("#"):
                assert line.split("  #")[0].rstrip() in files, line
