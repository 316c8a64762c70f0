"""The runs pane: one row per run (live target, time to target, speed against the record) and the selected
run's output tail, with the guard's notes on the commit it trains."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from copilot.ui.panes.base import Pane
from copilot.ui.widgets.shown import show
from copilot.ui.view import View
from copilot.ui.widgets.log_tail import LINES_PER_FLUSH, LogTail
from copilot.ui.widgets.run_table import RunTable


class RunsPane(Pane):
    PARTS = frozenset({"runs"})
    BINDINGS = [Binding("ctrl+c", "app.cancel_run", "Cancel run", priority=False)]

    def __init__(self, *, log_tail_of: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # run id -> the last lines of its output.log, scrubbed of secrets (to seed the tail), or None
        self.log_tail_of = log_tail_of

    def compose(self) -> ComposeResult:
        yield RunTable(id="run-table")
        yield Static("", id="guard-notes", classes="pane-note")
        yield LogTail(id="log-tail")

    def render_view(self, view: View) -> None:
        table = self.query_one(RunTable)
        table.sync(list(view.state.runs.values()), _record_time(view), _baseline_label(view))
        view.ui.selected_run = table.selected_run_id
        self._render_guard(view)
        self.render_log(view)

    def _render_guard(self, view: View) -> None:
        note = self.query_one("#guard-notes", Static)
        run = view.state.runs.get(view.ui.selected_run or "")
        report = view.state.guard_reports.get(run.commit) if run is not None else None
        if not report or not report.get("findings"):
            show(note, "")
            note.display = False
            return
        overrides = [o for o in view.state.guard_overrides if o["commit"] == run.commit and o["choice"] == "run"]
        head = ("guard: run anyway by your choice" if overrides else "guard") + f" · commit {run.commit[:7]}"
        parts = [f"line {f.get('line', '?')}: {f.get('reason') or f.get('rule')}" for f in report["findings"][:3]]
        show(note, head + " · " + " · ".join(parts))
        note.display = True

    def render_log(self, view: View) -> None:
        tail = self.query_one(LogTail)
        logs = view.ui.logs
        run_id = view.ui.selected_run
        if tail.run_id != run_id:
            if run_id and not logs.has(run_id) and self.log_tail_of is not None:
                logs.seed(run_id, self.log_tail_of(run_id))
            logs.take_pending(None)
            tail.show_run(run_id, logs.lines(run_id) if run_id else [])
        else:
            tail.write_batch(logs.take_pending(run_id, LINES_PER_FLUSH))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.app.mark_dirty("chart", "runs")  # type: ignore[attr-defined]


def _record_time(view: View) -> float | None:
    return view.state.baseline_times()[0]


def _baseline_label(view: View) -> str:
    return "same machine" if view.state.baseline_times()[2] else "catalogue"
