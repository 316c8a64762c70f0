"""The loss pane redraws at most every MIN_REDRAW_S, and never draws an older view over a newer one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from textual.app import App, ComposeResult

from copilot.ui.panes import chart as chart_module
from copilot.ui.panes.chart import MIN_REDRAW_S, ChartPane
from tests.support.ui import wait_until


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ChartPane(id="chart")


async def test_a_late_timer_never_draws_an_older_view_over_a_newer_one(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(chart_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    drawn: list[str] = []

    def draw(self: ChartPane, view: str) -> None:
        drawn.append(view)
        self._last_draw = now[0]

    fired: list[bool] = []
    draw_pending = ChartPane._draw_pending

    def counted_draw_pending(self: ChartPane) -> None:
        fired.append(True)
        draw_pending(self)

    monkeypatch.setattr(ChartPane, "_draw", draw)
    monkeypatch.setattr(ChartPane, "_draw_pending", counted_draw_pending)
    app = ChartApp()
    async with app.run_test() as pilot:
        pane = app.query_one(ChartPane)
        pane.render_view("first")  # type: ignore[arg-type]
        now[0] += MIN_REDRAW_S / 3
        pane.render_view("held back")  # type: ignore[arg-type]  # inside the interval: waits for a timer
        assert drawn == ["first"]
        now[0] += MIN_REDRAW_S  # the interval is over before that timer ran (a loaded machine)
        pane.render_view("newest")  # type: ignore[arg-type]
        assert drawn == ["first", "newest"]
        await wait_until(pilot, lambda: fired, what="the late timer")
    assert drawn == ["first", "newest"]  # the held-back view, older, is not drawn over the newest

