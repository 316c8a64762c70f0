"""RedrawTurns: each flush redraws every light pane and at most one heavy pane; a turn ends when that pane's
redraw was painted (or after MAX_UNPAINTED_FLUSHES); no heavy pane waits for ever."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.ui.view import HEAVY_PANES, PANES, RedrawTurns

LIGHT = sorted(PANES - set(HEAVY_PANES))
HEAVY = set(HEAVY_PANES)


def test_one_heavy_pane_per_turn_and_the_light_ones_at_once() -> None:
    turns = RedrawTurns()
    now, later = turns.take({"header", "suggestion", "chart", "history"})
    assert now == {"header", "history", "suggestion"} and later == {"chart"}
    turns.painted()
    now, later = turns.take(later | {"suggestion"})  # the suggestion is dirty again (streaming)
    assert now == {"chart"} and later == {"suggestion"}  # the chart waited: its turn first


def test_no_heavy_pane_is_handed_out_until_the_last_one_was_painted_or_too_long_ago() -> None:
    turns = RedrawTurns()
    now, later = turns.take({"script", "runs"})
    assert now == {"script"}
    for _ in range(RedrawTurns.MAX_UNPAINTED_FLUSHES):  # the script pane's redraw is not on screen yet
        now, later = turns.take(later | {"header"})
        assert now == {"header"} and later == {"runs"}
    now, later = turns.take(later)  # never reported painted (not on screen): the next turn starts anyway
    assert now == {"runs"} and not later
    turns.painted()
    assert turns.take({"chart"}) == ({"chart"}, set())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sets(st.sampled_from(sorted(PANES))), st.booleans()), min_size=1, max_size=30))
def test_every_dirty_pane_is_redrawn_within_its_turns(flushes: list[tuple[set[str], bool]]) -> None:
    """Whatever becomes dirty at each flush and whether its paint is reported before the next: a light pane
    is redrawn at that flush, at most one heavy pane per flush, nothing is dropped, and a heavy pane waits at
    most len(HEAVY_PANES) turns (the one under way, then each other heavy pane's) of at most
    MAX_UNPAINTED_FLUSHES + 1 flushes each."""
    turns = RedrawTurns()
    most = len(HEAVY_PANES) * (RedrawTurns.MAX_UNPAINTED_FLUSHES + 1)
    dirty: set[str] = set()
    dirty_since: dict[str, int] = {}
    quiet = [(set(), False)] * (most + 1)  # nothing new, never painted: everything waiting still gets its turn
    for flush, (arriving, painted) in enumerate(flushes + quiet):
        for pane in arriving - dirty:
            dirty_since[pane] = flush
        dirty |= arriving
        now, later = turns.take(dirty)
        assert now | later == dirty and not now & later
        assert len(now & HEAVY) <= 1
        assert set(LIGHT) & dirty <= now
        for pane in later:
            assert flush - dirty_since[pane] < most
        for pane in now:
            dirty_since.pop(pane, None)
        if painted:
            turns.painted()
        dirty = later
    assert not dirty
