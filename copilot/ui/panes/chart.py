"""The loss pane: val and train loss against training time for the chosen runs, the record's own curve and the
target."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult

from copilot.core.session.projection import RunView
from copilot.ui.panes.base import Pane
from copilot.ui.view import View
from copilot.ui.widgets.loss_chart import LossChart

CHART_RUNS = 4  # at most this many runs drawn at once (pinned first, then the selected one, then live ones)


def chart_runs(view: View) -> list[RunView]:
    state, ui = view.state, view.ui
    ids = list(ui.pinned_runs)
    if ui.selected_run and ui.selected_run not in ids:
        ids.append(ui.selected_run)
    for run in state.live_runs:
        if run.run_id not in ids:
            ids.append(run.run_id)
    if not ids and state.runs:
        ids.append(next(reversed(state.runs)))
    return [state.runs[i] for i in ids if i in state.runs][-CHART_RUNS:]


MIN_REDRAW_S = 0.5  # live metrics redraw the chart at most this often (a redraw is a re-layout of the legend)


class ChartPane(Pane):
    PARTS = frozenset({"chart"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._last_draw = float("-inf")
        self._pending: View | None = None

    def compose(self) -> ComposeResult:
        yield LossChart(id="loss-chart")

    def render_view(self, view: View) -> None:
        now = time.monotonic()
        if now - self._last_draw < MIN_REDRAW_S:
            if self._pending is None:
                self.set_timer(MIN_REDRAW_S - (now - self._last_draw), self._draw_pending)
            self._pending = view  # the newest view wins; drawn when the interval is over
            return
        self._pending = None  # a view still waiting for a late timer is older than this one: never draw it after
        self._draw(view)

    def _draw_pending(self) -> None:
        view, self._pending = self._pending, None
        if view is not None and self.is_mounted:
            self._draw(view)

    def _draw(self, view: View) -> None:
        self._last_draw = time.monotonic()
        record_s, _, same = view.state.baseline_times()
        chart = self.query_one(LossChart)
        chart.versus = (record_s, "" if same else " (cat.)")  # the projected time against the record, labelled
        chart.show(chart_runs(view), view.ui.reference, view.state.target_val_loss or None)
