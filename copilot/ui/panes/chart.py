"""The loss pane: val and train loss against training time for the chosen runs, the record's own curve and the
target."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult

from copilot.core.session.projection import RunView
from copilot.ui.panes.base import Pane
from copilot.ui.view import RedrawWanted, View
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
        self._asked = False  # a RedrawWanted is on its way

    def compose(self) -> ComposeResult:
        yield LossChart(id="loss-chart")

    def render_view(self, view: View) -> None:
        now = time.monotonic()
        if now - self._last_draw < MIN_REDRAW_S:
            if not self._asked:  # drawn later from a newer view, at a flush, in the chart's turn
                self._asked = True
                self.set_timer(MIN_REDRAW_S - (now - self._last_draw), self._ask_again)
            return
        self._draw(view)

    def _ask_again(self) -> None:
        self._asked = False
        if self.is_mounted:
            self.post_message(RedrawWanted("chart"))

    def _draw(self, view: View) -> None:
        self._last_draw = time.monotonic()
        record_s, _, same = view.state.baseline_times()
        chart = self.query_one(LossChart)
        chart.versus = (record_s, "" if same else " (cat.)")  # the projected time against the record, labelled
        chart.show(chart_runs(view), view.ui.reference, view.state.target_val_loss or None)
