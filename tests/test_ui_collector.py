"""The app keeps the collector's full pauses short: long-lived objects are frozen while it runs, and only then."""

from __future__ import annotations

import gc
from pathlib import Path

from copilot.core.llm.providers import OracleProvider
from copilot.core.session import Session
from copilot.ui.app import CopilotApp
from copilot.ui.collector import FULL_COLLECTION_EVERY, CollectorPauses
from tests.support.fixture_track import FixtureTrack
from tests.support.ui import wait_until


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_full_collections_are_rarer_while_active_and_the_thresholds_come_back_at_stop() -> None:
    before = gc.get_threshold()
    pauses = CollectorPauses()
    try:
        pauses.start()
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2] and old == FULL_COLLECTION_EVERY > before[2]
    finally:
        pauses.stop()
    assert gc.get_threshold() == before


def test_survivors_of_a_full_collection_are_frozen_at_the_next_tick_and_released_at_stop() -> None:
    pauses = CollectorPauses()
    try:
        pauses.start()
        frozen = gc.get_freeze_count()
        assert frozen > 0 and pauses.active
        kept = [Cycle() for _ in range(500)]  # long-lived: they survive the next full collection
        pauses.tick()
        assert gc.get_freeze_count() == frozen  # no full collection yet: nothing more frozen
        gc.collect()
        pauses.tick()
        assert gc.get_freeze_count() >= frozen + len(kept)
    finally:
        pauses.stop()
    assert gc.get_freeze_count() == 0 and not pauses.active
    assert pauses._on_collection not in gc.callbacks
    del kept
    assert gc.collect() >= 500  # unfrozen, the cycles left behind can be collected again


async def test_the_app_freezes_once_open_and_unfreezes_when_it_ends(tmp_path: Path) -> None:
    track = FixtureTrack()
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    app = CopilotApp(session)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.collector.active, what="the collector policy")
        assert gc.get_freeze_count() > 0
        await app.close_and_exit(stop_runs=True)
    assert gc.get_freeze_count() == 0
