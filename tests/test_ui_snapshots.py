"""SVG snapshots of the main screen (pytest-textual-snapshot). Update with `pytest --snapshot-update`.

The app is fed hand-written events, so nothing depends on a clock, a model or git.
"""

from __future__ import annotations

import pytest

from copilot.ui.app import CopilotApp
from tests.support.ui import sample_state


async def _settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.3)
    pilot.app.flush()
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = CopilotApp(state=sample_state(live_run=True))
    assert snap_compare(app, terminal_size=size, run_before=_settle)


def test_main_screen_light_theme_runs_tab(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = CopilotApp(state=sample_state(live_run=True), theme="speedcopilot-light")
    assert snap_compare(app, terminal_size=(80, 24), press=["3"], run_before=_settle)
