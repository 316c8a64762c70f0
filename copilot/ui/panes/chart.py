"""The loss pane: val and train loss against training time for the chosen runs, the record's own curve and the
target."""

from __future__ import annotations

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


class ChartPane(Pane):
    PARTS = frozenset({"chart"})

    def compose(self) -> ComposeResult:
        yield LossChart(id="loss-chart")

    def render_view(self, view: View) -> None:
        record_s, _, same = view.state.baseline_times()
        chart = self.query_one(LossChart)
        chart.versus = (record_s, "" if same else " (cat.)")  # the projected time against the record, labelled
        chart.show(chart_runs(view), view.ui.reference, view.state.target_val_loss or None)
