"""The loss pane redraws at most every MIN_REDRAW_S; a redraw it holds back comes back as a RedrawWanted, so it
draws later from the newest view at a flush (in its turn), never from a view it kept."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from textual.app import App, ComposeResult

from copilot.ui.panes import chart as chart_module
from copilot.ui.panes.chart import MIN_REDRAW_S, ChartPane
from copilot.ui.view import RedrawWanted
from tests.support.ui import wait_until


class ChartApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.wanted: list[str] = []

    def compose(self) -> ComposeResult:
        yield ChartPane(id="chart")

    def on_redraw_wanted(self, message: RedrawWanted) -> None:
        self.wanted.append(message.part)


async def test_a_held_back_redraw_is_asked_for_again_and_drawn_from_the_newest_view(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(chart_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    drawn: list[str] = []

    def draw(self: ChartPane, view: str) -> None:
        drawn.append(view)
        self._last_draw = now[0]

    monkeypatch.setattr(ChartPane, "_draw", draw)
    app = ChartApp()
    async with app.run_test() as pilot:
        pane = app.query_one(ChartPane)
        pane.render_view("first")  # type: ignore[arg-type]
        now[0] += MIN_REDRAW_S / 3
        pane.render_view("held back")  # type: ignore[arg-type]  # inside the interval
        pane.render_view("held back too")  # type: ignore[arg-type]  # one request is enough
        assert drawn == ["first"]
        await wait_until(pilot, lambda: app.wanted, what="the pane to ask for its redraw")
        now[0] += MIN_REDRAW_S
        pane.render_view("newest")  # type: ignore[arg-type]  # the flush that follows hands the newest view
        assert drawn == ["first", "newest"]  # the held-back views are gone, not drawn late
        assert app.wanted == ["chart"]
