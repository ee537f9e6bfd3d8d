"""One sandbox's request that reads a whole world (a Stripe search over every customer,
its whole world from guard.internal) does not hold every other sandbox's requests while it
runs: its scan pauses each slice for the others (guard.world.bridge), through the real
proxy, with either store.

The heavy sandbox's world is made endless for the test (its customers never run out until
the other sandbox has its answer, or a minute passes): without the pauses the light
sandbox's request could not be answered before the search ends, and the test fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from guard.world.memory import MemoryWorld
from guard.world.redis import RedisWorld
from guard.world.store import dumps
from tests.sandboxes import token

API = "https://api.stripe.com/v1"


def _session(g: Any, sandbox: str) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies = {"https": g.url}
    s.verify = g.ca
    s.headers.update({"Authorization": "Bearer sk_test_fair", "X-Guard-Sandbox": token(sandbox)})
    return s


HEAVY = {
    "search": (f"{API}/customers/search", {"query": "email:'nobody@example.com'"}),
    "guard.internal/world": ("https://guard.internal/world", {}),
}


@pytest.mark.parametrize("heavy_request", HEAVY)
def test_a_whole_world_read_of_an_endless_world_does_not_hold_another_sandboxs_requests(
        guard_proxy, monkeypatch: pytest.MonkeyPatch, heavy_request: str) -> None:
    g = guard_proxy(sandbox_from="header")
    heavy, light = _session(g, "heavy"), _session(g, "light")
    for s in (heavy, light):  # worlds opened, connections kept for the next request
        assert s.post(f"{API}/customers", data={"email": "warm@example.com"}).ok
    scanning, light_answered = threading.Event(), threading.Event()
    customer = dumps({"object": "customer", "email": "filler@example.com", "metadata": {}})

    def endless(original: Any) -> Any:
        def scan(self: Any, collection: str, *, after: str | None,
                 reverse: bool) -> Iterator[tuple[str, str]]:
            if self.name != "heavy" or collection != "stripe.customers":
                yield from original(self, collection, after=after, reverse=reverse)
                return
            scanning.set()
            limit, n = time.monotonic() + 60, 0
            while not light_answered.is_set() and time.monotonic() < limit:
                n += 1
                yield f"cus_filler{n}", customer
        return scan

    for cls in (MemoryWorld, RedisWorld):
        monkeypatch.setattr(cls, "_scan_raw", endless(cls._scan_raw))
    answers: dict[str, requests.Response] = {}
    url, params = HEAVY[heavy_request]
    search = threading.Thread(target=lambda: answers.update(heavy=heavy.get(
        url, params=params, timeout=120)))
    search.start()
    try:
        assert scanning.wait(60), "the search never started scanning"
        answers["light"] = light.post(f"{API}/customers", data={"email": "l@example.com"},
                                      timeout=90)
        searching = search.is_alive() and "heavy" not in answers
    finally:
        light_answered.set()
        search.join(120)
    assert answers["light"].status_code == 200, answers["light"].text
    assert searching, "the light sandbox was answered only once the search had ended"
    assert answers["heavy"].status_code == 200, answers["heavy"].text
    if heavy_request == "search":
        assert answers["heavy"].json()["data"] == []
    else:
        assert len(answers["heavy"].json()["collections"]["stripe.customers"]) > 1
