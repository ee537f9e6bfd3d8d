"""CI runs every built-in pack's cases: this is the test that makes `make test` do it."""

from __future__ import annotations

from authoring_helpers import guard

from guard.authoring import collect, run_suite


def test_guard_test_passes_on_the_builtin_packs(capsys):
    code, out, err = guard(capsys, "test")
    assert code == 0, out + err
    assert out.splitlines()[-1].endswith(" 0 failed")


def test_every_builtin_pack_ships_with_cases():
    suite = collect([])
    by_id = suite.ruleset.by_id
    tested = {g.pack for g in suite.groups if g.pack and g.cases}
    tested |= {by_id[r.outcome.seen.rule].pack for r in run_suite(suite)
               if r.outcome.seen.rule in by_id}
    missing = set(suite.packs) - tested
    assert not missing, f"built-in packs without test cases: {sorted(missing)}"
