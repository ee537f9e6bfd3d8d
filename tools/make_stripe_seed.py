"""Build fixtures/seeds/stripe-catalogue.json: a prepared Stripe catalogue (products and
prices) made by guard's own Stripe handlers, so every object has Stripe's full shape.

    .venv/bin/python tools/make_stripe_seed.py

Use it with ``guard run --world stripe-catalogue``; every new sandbox starts with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from guard.packs import load_packs
from guard.request import Request
from guard.synth.simulator import Simulator
from guard.world import MemoryStore, snapshot
from guard.world.snapshot import SNAPSHOT_VERSION

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "seeds" / "stripe-catalogue.json"

CATALOGUE = [
    ({"id": "prod_starter", "name": "Starter", "description": "For individuals"},
     [{"unit_amount": 900, "recurring[interval]": "month", "lookup_key": "starter_monthly"},
      {"unit_amount": 9000, "recurring[interval]": "year", "lookup_key": "starter_yearly"}]),
    ({"id": "prod_pro", "name": "Pro", "description": "For teams"},
     [{"unit_amount": 2900, "recurring[interval]": "month", "lookup_key": "pro_monthly"},
      {"unit_amount": 29000, "recurring[interval]": "year", "lookup_key": "pro_yearly"}]),
    ({"id": "prod_tshirt", "name": "T-shirt", "description": "Comfortable gray cotton t-shirt"},
     [{"unit_amount": 2000, "lookup_key": "tshirt"}]),
]


def main() -> None:
    packs, worlds = load_packs([]), MemoryStore(seed=2026)
    sim = Simulator(worlds)

    def post(path: str, form: dict[str, object]) -> dict[str, object]:
        req = Request.build("POST", f"https://api.stripe.com{path}", sandbox="seed",
                            headers={"Authorization": "Bearer sk_test_seed",
                                     "Content-Type": "application/x-www-form-urlencoded"},
                            body=urlencode(form))
        out = sim.respond(packs.engine.decide(req), req, packs.responders)
        assert out.response.status == 200, out.response.body
        return json.loads(out.response.body)  # type: ignore[no-any-return]

    for product, prices in CATALOGUE:
        post("/v1/products", product)
        ids = [post("/v1/prices", {"product": product["id"], "currency": "usd", **p})["id"]
               for p in prices]
        post(f"/v1/products/{product['id']}", {"default_price": ids[0]})
    world = worlds.world("seed")
    keep = ("stripe.products", "stripe.prices")
    snap = world.snapshot()
    snapshot.write({"v": SNAPSHOT_VERSION, "sandbox": "stripe-catalogue",
                    "collections": {k: snap["collections"][k] for k in keep},
                    "counters": {}}, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
