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


def yaml_blocks(heading: str) -> list[str]:
    guide = GUIDE.read_text()
    start = guide.index(heading)
    section = guide[start:guide.index("\n## ", start + 1)]
    return re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)


def test_the_quick_start_pack_and_the_case_format_example_pass(tmp_path, capsys):
    quick = tmp_path / "acme.yaml"
    quick.write_text(yaml_blocks("## 1. A first pack")[0])
    code, out, err = guard(capsys, "test", str(quick))
    assert code == 0 and out.splitlines()[-1] == "1 passed, 0 failed", out + err

    case_file = tmp_path / "stripe.cases.yaml"
    case_file.write_text(yaml_blocks("## 9. Test cases")[0].replace("tests:", "cases:", 1))
    code, out, err = guard(capsys, "test", str(case_file))
    assert code == 0 and out.splitlines()[-1] == "1 passed, 0 failed", out + err
