"""Short garbage-collector pauses for the app's process.

CPython's full (generation 2) collection scans every tracked object, so in a process holding Textual, the
session's events and an hour of metric points, each one stopped the UI's loop for 100–250 ms (measured on a
2-core VM, docs/benchmarks.md). What exists once the session is open — modules, CSS, the session itself — and
whatever survives a full collection is long-lived, so it is moved to the permanent generation (gc.freeze),
which collections skip: each full collection then scans only what was made since the last one. Reference
counting still frees everything frozen that becomes garbage; only cycles among frozen objects wait until the
app ends, when everything is unfrozen again.
"""

from __future__ import annotations

import gc
from typing import Any


# With everything long-lived frozen, CPython's check "a full collection only when the objects waiting for one
# exceed a quarter of the long-lived ones" compares against almost nothing, so a full collection followed every
# tenth middle one (each 11–21 ms in an agent node, docs/benchmarks.md). Ten times fewer keep the pauses rare;
# cycles that are garbage wait longer, which a terminal app can afford.
FULL_COLLECTION_EVERY = 100  # middle-generation collections (CPython's default: 10)


class CollectorPauses:
    def __init__(self) -> None:
        self._active = False
        self._full_collection_done = False
        self._thresholds: tuple[int, int, int] | None = None

    @property
    def active(self) -> bool:
        return self._active

    def start(self) -> None:
        """Freeze what exists now; from here on, what survives each full collection is frozen too (at tick)."""
        if self._active:
            return
        self._active = True
        gc.freeze()
        self._thresholds = gc.get_threshold()
        young, middle, _old = self._thresholds
        gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
        gc.callbacks.append(self._on_collection)

    def tick(self) -> None:
        """Called from the app's flush: freeze the survivors of a full collection that ended since the last
        tick (not inside the collector's own callback)."""
        if self._active and self._full_collection_done:
            self._full_collection_done = False
            gc.freeze()

    def stop(self) -> None:
        """Unfreeze everything, so what the app leaves behind can be collected (tests open many apps)."""
        if not self._active:
            return
        self._active = False
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
        gc.unfreeze()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            self._full_collection_done = True
