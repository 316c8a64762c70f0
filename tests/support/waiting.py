"""Waiting on conditions in tests: the deadline is a hang guard, never a speed check.

A loaded machine may take many times longer than a quiet one, so every wait in the suite polls a condition and
gives up only after HANG_GUARD_S; how fast something happens is measured in bench/, not asserted here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

HANG_GUARD_S = 120.0


def _polled(predicate: Callable[[], Any], what: str, timeout_s: float) -> Callable[[], Any]:
    """One look at the predicate: its truthy value, None to look again, AssertionError past the guard."""
    deadline = time.monotonic() + timeout_s

    def look() -> Any:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        return None

    return look


def wait_until(predicate: Callable[[], Any], what: str = "the condition", timeout_s: float = HANG_GUARD_S,
               interval_s: float = 0.02) -> Any:
    """The predicate's first truthy value; AssertionError naming `what` after the hang guard."""
    look = _polled(predicate, what, timeout_s)
    while (value := look()) is None:
        time.sleep(interval_s)
    return value


async def until(predicate: Callable[[], Any], what: str = "the condition", timeout_s: float = HANG_GUARD_S,
                interval_s: float = 0.02) -> Any:
    """wait_until for a coroutine: polls without blocking the event loop."""
    look = _polled(predicate, what, timeout_s)
    while (value := look()) is None:
        await asyncio.sleep(interval_s)
    return value
