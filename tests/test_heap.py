"""guard.heap: guard run's long-lived heap frozen out of full collections, thawed by a
rule reload until the next full collection has freed the old packs. In a child process:
freezing this test process's heap would outlive the test."""

from __future__ import annotations

import subprocess
import sys

CHILD = r'''
import gc, weakref
from guard import heap

class Packs:  # what a reload replaces: held in a cycle, so only the collector frees it
    def __init__(self):
        self.me = self

packs = Packs()
heap.settle()
assert heap.frozen() > 1000, heap.frozen()
old = weakref.ref(packs)
packs = Packs()  # the swap
heap.thawed()
assert heap.frozen() == 0
assert old() is not None  # nothing forced: the next full collection frees it
gc.collect(2)
assert old() is None, "the old packs' cycle outlived the full collection"
assert heap.frozen() > 1000  # frozen again right after it
survivor = weakref.ref(packs)
gc.collect(2)
assert survivor() is not None
print("ok")
'''


def test_settle_freezes_a_reload_thaws_and_the_next_full_collection_frees_and_refreezes(
) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_a_heap_never_settled_is_left_alone() -> None:
    out = subprocess.run([sys.executable, "-c", "import gc\nfrom guard import heap\n"
                          "before = gc.get_freeze_count()\nheap.thawed()\n"
                          "assert gc.get_freeze_count() == before\nprint('ok')"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
