"""Waiting on conditions in tests: the deadline is a hang guard, never a speed check.

A loaded machine may take many times longer than a quiet one, so every wait in the suite polls a condition and
gives up only after HANG_GUARD_S; how fast something happens is measured in bench/, not asserted here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

HANG_GUARD_S = 120.0


def wait_until(predicate: Callable[[], Any], what: str = "the condition", timeout_s: float = HANG_GUARD_S,
               interval_s: float = 0.02) -> Any:
    """The predicate's first truthy value; AssertionError naming `what` after the hang guard."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


async def until(predicate: Callable[[], Any], what: str = "the condition", timeout_s: float = HANG_GUARD_S,
                interval_s: float = 0.02) -> Any:
    """wait_until for a coroutine: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval_s)
