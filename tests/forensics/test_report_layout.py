"""The HTML report read in a real browser (Debian's headless chromium) at 1280 px: every
chart fits its card, nothing scrolls sideways, and the outbox shows recipients as text."""

from __future__ import annotations

from guard.cli import main
from tests.console.conftest import browser  # noqa: F401  (the chromium fixture)


def test_the_report_fits_a_1280px_window_and_shows_the_outbox_as_text(
        recorded_log, tmp_path, browser):  # noqa: F811
    # recorded_log: a real guard's log of an agent session, with an outbox record
    report = tmp_path / "report.html"
    assert main(["audit", "export", str(recorded_log), "--html", str(report)]) == 0
    browser.set_window_size(1280, 900)
    browser.get(report.as_uri())
    width = browser.execute_script("return document.documentElement.clientWidth")
    overflow = browser.execute_script("""
        return [...document.querySelectorAll('.chart')].map(c => {
            const card = c.getBoundingClientRect();
            return [...c.querySelectorAll('svg')].map(s => s.getBoundingClientRect().right
                                                          - card.right);
        }).flat();""")
    assert overflow and max(overflow) <= 0, overflow
    assert browser.execute_script(
        "return document.documentElement.scrollWidth") <= width
    outbox = browser.execute_script(
        "return document.querySelector('#outbox-table').innerText")
    assert "boss@corp.test" in outbox and "['" not in outbox
