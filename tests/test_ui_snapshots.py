"""SVG snapshots of the screens (pytest-textual-snapshot). Update with `pytest --snapshot-update`.

The app is fed typed events built in tests/support/ui.py, so nothing depends on a clock, a model or git. Each
snapshot is taken once the screen has settled: a condition, not a sleep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from copilot.core.session.replay import ReplayPlayer
from copilot.ui.app import CopilotApp
from copilot.ui.replay import replay_app
from copilot.ui.screens.help import HelpScreen
from copilot.ui.screens.modals import ConfirmModal, GuardModal, MessageModal, QuitModal
from copilot.ui.widgets.hunk_card import HunkCard
from copilot.ui.widgets.loss_chart import LossChart
from tests.support.ui import FakeClock, sample_events, sample_state, screen_text, wait_until

SIZES = [(80, 24), (160, 48)]
SIZE_IDS = ["80x24", "160x48"]


def _chart_drawn(app: Any) -> bool:
    charts = app.screen.query(LossChart)
    if not charts:
        return True
    chart = charts.first(LossChart)
    return chart.size.area == 0 or bool(chart.series and chart._plot() is not None)  # hidden in a tab, or drawn


async def _settled(pilot: Any) -> None:
    """Cards mounted, the footer drawn, the chart's plot mounted and nothing left for a flush to redraw."""
    app = pilot.app
    await wait_until(pilot, lambda: app.screen.query(HunkCard) or isinstance(app.screen, GuardModal),
                     what="the hunk cards")
    await wait_until(pilot, lambda: "Help" in screen_text(app) or isinstance(app.screen, GuardModal),
                     what="the footer")
    await wait_until(pilot, lambda: _chart_drawn(app), what="the chart")
    app.flush()
    await wait_until(pilot, lambda: not app.redraw_pending(), what="every pane redrawn (they take turns)")
    await pilot.pause()  # the panes handle the last StateUpdated
    # a DataTable measures its columns when its queue runs empty (on Idle): on a loaded machine that came after
    # the capture, and the run table was drawn with the widths of its rows before the last ones
    await wait_until(pilot, lambda: not any(table._updated_cells or table._require_update_dimensions
                                            for table in app.screen.query(DataTable)), what="the tables measured")
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


def _app() -> CopilotApp:
    return CopilotApp(state=sample_state(live_run=True), clock=FakeClock())


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_main_screen(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_app(), terminal_size=size, run_before=_settled)


def test_main_screen_light_theme_runs_tab(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = CopilotApp(state=sample_state(live_run=True), theme="speedcopilot-light", clock=FakeClock())
    assert snap_compare(app, terminal_size=(80, 24), press=["3"], run_before=_settled)


GUARD_FINDINGS = [
    {"rule": "val.bent", "kind": "val_loss", "severity": "block", "line": 412, "where": "train_gpt.py:412",
     "text": "val_loss = min(val_loss, 3.27)", "reason": "the printed val loss is clamped",
     "why": "a clamped score says nothing about the model"},
    {"rule": "val.tokens", "kind": "val_tokens", "severity": "note", "line": 30, "where": "train_gpt.py:30",
     "text": "val_tokens = 10485760 // 2", "reason": "fewer validation tokens", "why": "a smaller sample"},
]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_guard_dialog(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def open_dialog(pilot: Any) -> None:
        await _settled(pilot)
        pilot.app.push_screen(GuardModal("c" * 40, GUARD_FINDINGS))
        await wait_until(pilot, lambda: "integrity guard blocks" in screen_text(pilot.app), what="the dialog")

    assert snap_compare(_app(), terminal_size=size, run_before=open_dialog)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_replay_screen(snap_compare, size: tuple[int, int], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    player = ReplayPlayer(sample_events(live_run=True), speed=1)
    player.seek(player.duration)
    app = replay_app(player, autoplay=False)

    async def settled(pilot: Any) -> None:
        await wait_until(pilot, lambda: app._drawn_cursor == (player.cursor, len(player.events)),
                         what="the replay drawn")
        await wait_until(pilot, lambda: "event" in screen_text(app), what="the timeline caption")
        await _settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=settled)


DIALOGS: dict[str, Any] = {
    "help": lambda: HelpScreen(),
    "quit": lambda: QuitModal(["r2"]),
    "crash": lambda: MessageModal("run r2 crashed", "RuntimeError: shapes (4,8) and (9,8) do not match\n\n"
                                  "exit code 1\n\nTraceback (most recent call last):\n  File \"train_gpt.py\", "
                                  "line 52, in main\n    logits = model(x)\nRuntimeError: shapes (4,8) and (9,8)"),
    "edit_commit": lambda: ConfirmModal("Commit your edit of the working copy?",
                                        ["--- a/train_gpt.py", "+++ b/train_gpt.py", "@@ -3 +3 @@", "-LR = 0.001",
                                         "+LR = 0.002"], "Commit"),
}
DIALOG_TEXT = {"help": "speedcopilot — keys", "quit": "still training", "crash": "exit code 1",
               "edit_commit": "Commit your edit"}


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("dialog", sorted(DIALOGS))
def test_dialogs(snap_compare, dialog: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The modals a user meets besides the guard's: keys, quitting with a live run, a crashed run, an edit to
    commit. Each over the settled main screen."""
    async def open_dialog(pilot: Any) -> None:
        await _settled(pilot)
        pilot.app.push_screen(DIALOGS[dialog]())
        await wait_until(pilot, lambda: DIALOG_TEXT[dialog] in screen_text(pilot.app), what="the dialog")
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(_app(), terminal_size=size, run_before=open_dialog)
