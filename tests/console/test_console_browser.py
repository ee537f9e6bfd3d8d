"""The web console in a real headless Chromium (Debian's, through chromium-driver): log in,
see flows arrive live from requests through the proxy, open one, filter, and find that
what an agent injects is shown as text and never runs, HTML mail included.

One browser and one guard serve every test here (package fixtures in conftest.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guard.proxy.embedded import RunningGuard
from tests.console.console_helpers import agent, sandbox
from tests.upstream import Upstream

pytestmark = pytest.mark.timeout(180)

WAIT = 20  # seconds a condition may take to come true (a bound, not a measurement)
HOSTILE_HEADER = "<script>window.__pwned=1</script></textarea><img src=x onerror=window.__pwned=2>"


def wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition)


def by_css(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))


def rows_of(driver: Any, name: str) -> list[Any]:
    return [r for r in by_css(driver, "#flows tbody tr")
            if r.find_elements("css selector", "td.sandbox")
            and r.find_element("css selector", "td.sandbox").text == name]


@pytest.fixture(scope="module")
def console(browser: Any, console_guard: RunningGuard) -> Any:
    """The browser, logged in to the console (the login itself is checked on the way)."""
    browser.get(console_guard.admin_url + "/console/")
    assert browser.current_url.endswith("/console/login")
    box = by_css(browser, "#token")[0]
    box.send_keys("certainly-not-the-admin-token")
    by_css(browser, "#login")[0].click()
    wait(browser, lambda d: by_css(d, "#failed") and by_css(d, "#failed")[0].is_displayed())
    by_css(browser, "#token")[0].send_keys(console_guard.admin_token)
    by_css(browser, "#login")[0].click()
    wait(browser, lambda d: d.current_url.endswith("/console/"))
    assert console_guard.admin_token not in browser.current_url
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly
    return browser


def open_console(driver: Any, g: RunningGuard) -> None:
    driver.get(g.admin_url + "/console/#flows")
    wait(driver, lambda d: by_css(d, "#live.on"))  # the live stream is open


def show_tab(driver: Any, g: RunningGuard, name: str) -> None:
    """Open the console afresh on one tab (a page load, so it reads everything anew)."""
    driver.get(g.admin_url + "/console/")
    by_css(driver, f"#tab-{name}")[0].click()
    wait(driver, lambda d: by_css(d, f"#view-{name}")[0].is_displayed())


def test_a_flow_appears_live_and_what_the_agent_injected_shows_as_text(
        console: Any, console_guard: RunningGuard) -> None:
    open_console(console, console_guard)
    name = sandbox("browser")
    assert rows_of(console, name) == []
    with agent(console_guard, name) as a:
        a.post("http://shop.test/orders", content=b'{"note": "<img src=x onerror='
               b'window.__pwned=3>"}', headers={
                   "X-Evil": HOSTILE_HEADER.encode(), "Content-Type": "application/json",
                   "X-Bidi": "invoice\u202egnp.exe\x1b[2J".encode()})
    row = wait(console, lambda d: rows_of(d, name))[0]  # no reload: it came live
    assert "shop.orders.create" in row.text and "simulate" in row.text
    row.click()
    detail = wait(console, lambda d: by_css(d, "#detail h2") and by_css(d, "#detail"))[0]
    wait(console, lambda d: "x-evil" in d.find_element("css selector", "#detail").text)
    text = detail.text
    assert HOSTILE_HEADER in text  # shown as the characters the agent sent
    assert "window.__pwned=3" in text
    escapes = [e.text for e in by_css(console, "#detail .esc")]
    assert "\\u202e" in escapes and "\\x1b" in escapes  # visible, not acted on
    assert console.execute_script("return window.__pwned") is None  # nothing ran
    assert by_css(console, "#detail script, #detail img, #detail textarea") == []
    assert not [e for e in console.get_log("browser") if "Trusted Type" in e["message"]]


def test_filters_narrow_the_list_and_apply_to_flows_that_arrive_live(
        console: Any, console_guard: RunningGuard) -> None:
    open_console(console, console_guard)
    name = sandbox("filter")
    host = by_css(console, "#f-host")[0]
    host.send_keys("docs.test")
    wait(console, lambda d: all("docs.test" in r.text for r in by_css(d, "#flows tbody tr")))
    with agent(console_guard, name) as a:
        a.get("http://shop.test/admin/a")  # not docs.test: must not be listed
        a.get("http://docs.test:1/")  # allowed by the rule, refused at its port: listed
    wait(console, lambda d: rows_of(d, name))
    assert [r.find_element("css selector", "td.url").text for r in rows_of(console, name)] \
        == ["http://docs.test:1/"]
    host.clear()
    by_css(console, "#f-clear")[0].click()
    wait(console, lambda d: len(rows_of(d, name)) == 2)  # both, once the filter is gone
    sandbox_box = by_css(console, "#f-sandbox")[0]
    sandbox_box.send_keys(name)
    wait(console, lambda d: by_css(d, "#flows tbody tr") and all(
        r.find_element("css selector", "td.sandbox").text == name
        for r in by_css(d, "#flows tbody tr")))
    sandbox_box.clear()
    by_css(console, "#f-clear")[0].click()


def test_an_html_mail_is_shown_in_a_sandboxed_frame_that_runs_and_loads_nothing(
        console: Any, console_guard: RunningGuard, upstream_site: Upstream) -> None:
    name = sandbox("mail")
    spy = f"http://127.0.0.1:{upstream_site.port}"
    html = (f"<h1 id=hello>Hello from the agent</h1>"
            "<script>parent.__mailpwned = 1; top.document.title = 'pwned'</script>"
            f"<img id=pixel src='{spy}/open.gif'>"
            f"<meta http-equiv=refresh content='0;url={spy}/refresh'>"
            f"<a id=link href='javascript:parent.__mailpwned=2'>click</a>"
            f"<p style='background:url({spy}/bg.png)'>styled</p>")
    mail = {"personalizations": [{"to": [{"email": "customer@example.test"}]}],
            "from": {"email": "agent@example.test"}, "subject": "Hi <b>there</b>",
            "content": [{"type": "text/plain", "value": "plain part"},
                        {"type": "text/html", "value": html}]}
    with agent(console_guard, name) as a:
        r = a.post("https://api.sendgrid.com/v3/mail/send", content=json.dumps(mail),
                   headers={"Authorization": "Bearer SG.test-key",
                            "Content-Type": "application/json"})
        assert r.status_code == 202, r.text
    connections = upstream_site.connections
    show_tab(console, console_guard, "sandboxes")
    row = wait(console, lambda d: [r for r in by_css(d, "#sandboxes tbody tr")
                                   if r.text.startswith(name + " ") or r.text == name])[0]
    row.click()
    wait(console, lambda d: by_css(d, "#open-outbox"))[0].click()
    mail_box = wait(console, lambda d: by_css(d, "article.mail"))[0]
    assert "Hi <b>there</b>" in mail_box.text and "plain part" in mail_box.text
    by_css(console, "article.mail .show-html")[0].click()
    frame = wait(console, lambda d: by_css(d, "iframe.mail-frame"))[0]
    assert frame.get_attribute("sandbox") == ""  # no allow-scripts, no allow-same-origin
    console.switch_to.frame(frame)
    try:
        hello = wait(console, lambda d: by_css(d, "h1"))[0]
        assert hello.text == "Hello from the agent"
        assert by_css(console, "script, meta[http-equiv]") == []
        assert by_css(console, "a")[0].get_attribute("href") is None
        assert not (by_css(console, "img")[0].get_attribute("src") or "")
        wait(console, lambda d: d.execute_script("return document.readyState") == "complete")
    finally:
        console.switch_to.default_content()
    assert console.execute_script("return window.__mailpwned") is None
    assert console.title == "guard console"
    assert upstream_site.connections == connections  # not a pixel, not a refresh


def test_worlds_and_rules_can_be_browsed(console: Any, console_guard: RunningGuard) -> None:
    name = sandbox("browse")
    with agent(console_guard, name) as a:
        a.post("https://api.stripe.com/v1/customers", data={"email": "</pre><b>x@y.test"},
               headers={"Authorization": "Bearer sk_test_1"})
        a.get("http://never-matched.test/a/b")
    show_tab(console, console_guard, "sandboxes")
    row = wait(console, lambda d: [r for r in by_css(d, "#sandboxes tbody tr")
                                   if r.text.split(" ")[0] == name])[0]
    row.click()
    wait(console, lambda d: by_css(d, '[data-collection="stripe.customers"]'))[0].click()
    obj = wait(console, lambda d: by_css(d, "#objects details.object"))[0]
    obj.click()
    assert '"email": "</pre><b>x@y.test"' in obj.text
    show_tab(console, console_guard, "rules")
    rule = wait(console, lambda d: by_css(d, '#rules tr[data-rule="stripe.customers.create"]'))[0]
    assert int(rule.find_elements("css selector", "td")[0].text) >= 1
    unmatched = wait(console, lambda d: [r for r in by_css(d, "#unmatched tbody tr")
                                         if "never-matched.test" in r.text])[0]
    assert "/a/b" in unmatched.text and name in unmatched.text
