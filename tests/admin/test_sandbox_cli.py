"""``guard sandbox ...`` against a running guard's admin API: tables and --json."""

from __future__ import annotations

import json

import pytest

from guard.cli import main
from tests.admin.admin_helpers import new_id


@pytest.fixture
def cli(admin_guard, monkeypatch, capsys):
    monkeypatch.setenv("GUARD_ADMIN_TOKEN", admin_guard.admin_token)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["sandbox", args[0], "--admin", admin_guard.admin_url, *args[1:]])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


def test_create_show_fork_snapshot_diff_ls_and_rm(cli, admin_guard):
    sid = new_id("cli")
    code, out, _ = cli("create", "--id", sid, "--label", "team=a", "--json")
    assert code == 0
    made = json.loads(out)
    assert made["id"] == sid and made["token"].startswith("gsk_")
    code, out, _ = cli("show", sid)
    assert code == 0 and out.splitlines()[0].split()[:2] == ["ID", "OBJECTS"]
    assert sid in out and "team=a" in out and "token" not in out
    code, out, _ = cli("snapshot", sid, "--id", f"{sid}-s", "--json")
    assert code == 0 and json.loads(out)["id"] == f"{sid}-s"
    code, out, _ = cli("fork", sid, "--id", f"{sid}-f", "--json")
    assert code == 0 and json.loads(out)["parent"] == sid
    code, out, _ = cli("diff", f"{sid}-f", "--since", f"{sid}-s")
    assert code == 0 and "no changes" in out
    code, out, _ = cli("ls", "--label", "team=a")
    rows = [line.split()[0] for line in out.splitlines()[1:]]
    assert sid in rows and f"{sid}-f" in rows
    code, out, _ = cli("rm", sid, f"{sid}-f")
    assert code == 0 and f"deleted {sid}" in out
    code, _, err = cli("show", sid)
    assert code == 1 and "404 not_found" in err


def test_sandbox_made_text_is_escaped_in_tables(cli, admin):
    sb = admin.create(new_id(), labels={"note": "\x1b[2J\x1b[31mfake row"})
    code, out, _ = cli("show", sb.id)
    assert code == 0 and "\x1b" not in out and "\\x1b[2J" in out


def test_without_a_token_or_with_a_wrong_one_the_cli_says_so(admin_guard, monkeypatch,
                                                             capsys, tmp_path):
    monkeypatch.delenv("GUARD_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GUARD_ADMIN_TOKEN_FILE", str(tmp_path / "none"))
    assert main(["sandbox", "ls", "--admin", admin_guard.admin_url]) == 2
    assert "no admin token" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.write_text("definitely-not-the-token\n")
    assert main(["sandbox", "ls", "--admin", admin_guard.admin_url, "--token-file",
                 str(bad)]) == 1
    assert "401 unauthorized" in capsys.readouterr().err


def test_an_unreachable_admin_api_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("GUARD_ADMIN_TOKEN", "x" * 20)
    assert main(["sandbox", "ls", "--admin", "http://127.0.0.1:9"]) == 1
    assert "cannot reach the admin API" in capsys.readouterr().err
