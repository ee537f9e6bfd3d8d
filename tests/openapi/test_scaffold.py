"""``guard pack from-openapi`` writes a pack that loads and whose cases pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.cli import main
from guard.rules.loader import load_rules

PETS = Path(__file__).with_name("petstore.yaml")


def test_a_written_pack_loads_and_its_cases_pass(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pack"
    assert main(["pack", "from-openapi", str(PETS), "--host", "pets.example", "--name", "pets",
                 "--out", str(out)]) == 0
    assert (out / "petstore.oas.yaml").read_bytes() == PETS.read_bytes()
    rs = load_rules([out], builtin=False)  # the whole folder: the description is skipped
    assert len(rs.rules) == 9 and rs.packs[0].pack.openapi.paging == "link"
    assert len(rs.packs[0].pack.tests) >= 3
    capsys.readouterr()
    assert main(["test", "--no-builtin", str(out)]) == 0
    assert " 0 failed" in capsys.readouterr().out


def test_it_refuses_to_overwrite_and_reports_bad_descriptions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["pack", "from-openapi", str(PETS), "--host", "pets.example", "--name", "pets",
            "--out", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 1 and "exists" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"swagger": "2.0"}))
    assert main(["pack", "from-openapi", str(bad), "--host", "h.example", "--name", "x",
                 "--out", str(tmp_path / "x")]) == 1
    assert "bad.json:1:1:" in capsys.readouterr().err
    assert main(["pack", "from-openapi", str(PETS), "--host", "h.example", "--name", "Bad Name",
                 "--out", str(tmp_path / "y")]) == 1


def test_the_server_path_becomes_the_base_path(tmp_path: Path) -> None:
    doc = {"openapi": "3.0.3", "info": {"title": "A", "version": "1"},
           "servers": [{"url": "https://api.example.com/api/v2"}],
           "paths": {"/things": {"get": {"operationId": "listThings", "responses": {
               "200": {"description": "ok", "content": {"application/json": {
                   "schema": {"type": "array", "items": {"type": "object"}}}}}}}}}}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    assert main(["pack", "from-openapi", str(tmp_path / "a.json"), "--host", "api.example.com",
                 "--name", "a", "--out", str(tmp_path / "a")]) == 0
    rs = load_rules([tmp_path / "a" / "a.yaml"], builtin=False)
    assert [p.template for r in rs.rules for p in r.paths] == ["/api/v2/things"]
