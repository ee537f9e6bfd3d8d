"""guard's long-lived heap, kept out of the cyclic collector's full collections.

Python's full (generation 2) collection walks every container object alive. A running
guard holds a few hundred thousand that live as long as it does (its rules, mitmproxy,
Faker, the modules), and a request that makes many objects at once (a Stripe search
decodes every customer of its world) sets off a full collection that walks them all: 210
ms of a 0.6 s search over 25,000 customers went to one, with the event loop, and so every
sandbox, held for it. :func:`settle`, once guard is serving, collects once and freezes
what is left (``gc.freeze``: the collector no longer looks at it; reference counting
still frees what is dropped): the same collection then took 19 ms and the search 0.27 s.

A rule reload replaces the packs, and the old ones may hold reference cycles only the
collector frees: :func:`thawed` unfreezes everything after a swap, so the next full
collection (when it comes by itself; none is forced on the loop) frees them, and freezes
what survives it. Only ``guard run`` settles its heap; guard embedded in another program
(tests, ``guard jail``'s harness) leaves that program's collector alone.
"""

from __future__ import annotations

import gc
from typing import Any

_state = {"settled": False, "thawed": False}


def settle() -> None:
    """Collect once and freeze what is alive: call when guard is up and serving."""
    gc.collect()
    gc.freeze()
    _state["settled"] = True
    if _refreeze not in gc.callbacks:
        gc.callbacks.append(_refreeze)


def thawed() -> None:
    """The packs were swapped: let the next full collection see (and free) the old ones."""
    if _state["settled"]:
        gc.unfreeze()
        _state["thawed"] = True


def _refreeze(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2 and _state["thawed"]:
        _state["thawed"] = False
        gc.freeze()


def frozen() -> int:
    """How many objects the collector does not look at (``gc.get_freeze_count``)."""
    return gc.get_freeze_count()
