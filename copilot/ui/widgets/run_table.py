"""Table of the session's runs, updated in place from the projection."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from copilot.core.research.speedup import speedup_text
from copilot.core.session.projection import RunView
from copilot.ui.widgets.steady_scrollbars import SteadyScrollbars

_RUN_ID = re.compile(r"^r-\d{8}-(\d{6})-(\w+)$")
COLUMNS = ("run", "commit", "status", "step", "val loss", "train time", "to target", "vs record")


def short_run_id(run_id: str) -> str:
    """`r-20261126-173955-13b5` → `173955-13b5`: the date is the session's, the rest tells runs apart."""
    match = _RUN_ID.match(run_id)
    return f"{match.group(1)}-{match.group(2)}" if match else run_id


def fmt_seconds(ms: float | None) -> str:
    return "—" if ms is None else f"{ms / 1000:.1f}s"


def speed_versus(record_time_s: float | None, time_to_target_ms: float | None) -> str:
    """'1.7× faster' / '1.3× slower' than the record (the time it takes to reach the target), or '—'."""
    return speedup_text(record_time_s, time_to_target_ms / 1000 if time_to_target_ms is not None else None)


def run_row(run: RunView, record_time_s: float | None, baseline: str = "catalogue") -> tuple[str, ...]:
    last = run.last_point
    step = "—"
    if last is not None:
        step = f"{last.step}/{last.total_steps}" if last.total_steps else str(last.step)
    best = run.best_val
    result = run.result or {}
    train_ms = result.get("train_time_ms", last.train_time_ms if last else None)
    ttt = run.time_to_target_ms
    if ttt is not None:
        to_target = fmt_seconds(ttt) + (" ✓" if run.is_live else "")
    else:
        to_target = "…" if run.is_live else "—"
    versus = speed_versus(record_time_s, ttt)
    if versus != "—" and baseline != "same machine":
        versus += " (cat.)"  # against the catalogue's time, measured on another machine
    status = run.status
    if run.is_live and run.queued:
        status = "queued"
    elif run.is_live and run.reached_target:
        status = "running ✓"
    commit = run.commit[:7] if run.node_id is None else f"n{run.node_id} {run.commit[:7]}"  # the agent's node
    return (short_run_id(run.run_id), commit, status, step, "—" if best is None else f"{best:.4f}",
            fmt_seconds(train_ms), to_target, versus)


class RunTable(SteadyScrollbars, DataTable):
    """One row per run, keyed by run id; `sync` adds new rows and rewrites changed cells only.

    Textual's DataTable (8.2.8) measures its columns later, when its queue runs empty, and keys the rows it has
    drawn on a count that the measuring does not move (textual#3533): a row drawn between `add_row` and that
    moment stayed drawn at the old widths ("reache" for "reached_target") until something else changed. So when
    a measurement moves a column, the drawn rows are dropped."""

    DEFAULT_CSS = """
    RunTable { height: 6; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._rows: dict[str, tuple[str, ...]] = {}
        self._measured: tuple[int, ...] = ()  # the column widths the drawn rows were drawn at, once measured

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        widths = tuple(column.content_width for column in self.columns.values())
        if widths != self._measured:
            self._measured = widths
            self._clear_caches()
            self.refresh()

    def reset(self) -> None:
        """Drop every row (a replay seeking backwards)."""
        self._rows.clear()
        self.clear()

    def sync(self, runs: list[RunView], record_time_s: float | None, baseline: str = "catalogue") -> None:
        ids = [r.run_id for r in runs]
        if list(self._rows)[: len(ids)] != ids[: len(self._rows)] or len(self._rows) > len(ids):
            self.reset()  # runs went away (a replay seeking backwards): start afresh
        for run in runs:
            row = run_row(run, record_time_s, baseline)
            old = self._rows.get(run.run_id)
            if old is None:
                self.add_row(*self._styled(row), key=run.run_id)
                self.move_cursor(row=self.row_count - 1)
            elif old != row:
                styled = self._styled(row)
                for name, before, after, cell in zip(COLUMNS, old, row, styled):
                    if before != after:
                        self.update_cell(run.run_id, name, cell, update_width=True)
            self._rows[run.run_id] = row

    def _styled(self, row: tuple[str, ...]) -> list[str | Text]:
        status = row[2]
        style = "bold" if status.startswith(("running", "reached_target")) else ""
        cells: list[str | Text] = list(row)
        cells[2] = Text(status, style=style)
        return cells

    @property
    def selected_run_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # cursor outside the table (empty table)
            return None
        return str(key.value) if key.value is not None else None
