"""Live loss chart: val/train loss vs training time for selected runs, the record's curve and the target.

Widgets never hold data of their own: `LossChart.show(...)` receives the projection's runs each flush and
redraws only when called (the app calls it at most every 0.1 s, and only when something changed).
"""

from __future__ import annotations

from typing import Any

import math
from contextlib import ExitStack
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from copilot.core.research.speedup import speedup_text
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session.projection import RunView
from copilot.ui.widgets.run_table import short_run_id
from copilot.ui.widgets.shown import show


def downsample(xs: list[float], ys: list[float], max_points: int) -> tuple[list[float], list[float]]:
    """Keep at most ~max_points points: per bucket the first point and the extreme (max) one; last point kept."""
    n = len(xs)
    if n <= max_points or max_points < 4:
        return xs, ys
    buckets = max_points // 2
    out_x: list[float] = []
    out_y: list[float] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if lo >= hi:
            continue
        out_x.append(xs[lo])
        out_y.append(ys[lo])
        peak = max(range(lo, hi), key=lambda i: ys[i])  # keep loss spikes visible
        if peak != lo:
            out_x.append(xs[peak])
            out_y.append(ys[peak])
    if out_x[-1] != xs[-1]:
        out_x.append(xs[-1])
        out_y.append(ys[-1])
    return out_x, out_y


PROJECTION_HORIZON = 3.0  # a projection further out than 3× the time so far is not worth drawing


def project_time_to_target(points: list[MetricPoint], target: float, window: int = 4,
                           horizon: float = PROJECTION_HORIZON) -> float | None:
    """Projected train time (ms) at which val loss reaches `target`, from a power-law fit of the last val points.

    log(loss) = a + b·log(time) fitted by least squares on the last `window` validation points with time > 0.
    Returns None when there are fewer than 3 points (early curves lie: a projection from two points said ~1957 s
    for a run that reached the target at 83 s), the curve is not falling, the target is already reached, or the
    crossing lies beyond `horizon` × the time so far.
    """
    val = [p for p in points if p.val_loss is not None and p.train_time_ms and p.train_time_ms > 0]
    val = [p for p in val if p.val_loss and p.val_loss > 0][-window:]
    if len(val) < 3 or target <= 0:
        return None
    if val[-1].val_loss is not None and val[-1].val_loss <= target:
        return None
    xs = [math.log(p.train_time_ms) for p in val]  # type: ignore[arg-type]
    ys = [math.log(p.val_loss) for p in val]  # type: ignore[arg-type]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    if slope >= 0:
        return None
    log_t = mx + (math.log(target) - my) / slope
    if log_t > math.log(horizon * val[-1].train_time_ms):  # type: ignore[arg-type]
        return None
    return math.exp(log_t)


def y_range(series: list["ChartSeries"], target: float | None) -> tuple[float, float] | None:
    """The loss axis: the target and every val / reference point in view, and the train curve after its first
    tenth (the first steps' huge losses would squash the rest), with a margin so no line sits on the edge."""
    values: list[float] = [target] if target else []
    for s in series:
        if s.kind in ("val", "reference", "projection"):
            values += [y for y in s.ys if math.isfinite(y)]
        elif s.kind == "train":
            values += [y for y in s.ys[len(s.ys) // 10 :] if math.isfinite(y)]
    if not values:
        return None
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.08, 0.02)
    return lo - pad, hi + pad


@dataclass(frozen=True)
class ChartSeries:
    """One plotted line (public so tests can read what the chart shows)."""

    label: str
    kind: str  # val | train | reference | target | projection
    xs: list[float]  # seconds of training time
    ys: list[float]


_PLOT_CLASS: type | None = None


def _plot_class() -> type:
    """textual-plot's widget without focus (its single-letter bindings must not shadow the app's).

    Imported on first use: textual-plot pulls in numpy, which the first frame does not need.
    """
    global _PLOT_CLASS
    if _PLOT_CLASS is None:
        from textual.reactive import reactive
        from textual_hires_canvas import Canvas
        from textual_plot import LegendLocation, PlotWidget

        class LossPlot(PlotWidget, can_focus=False):
            margin_top = reactive(1)
            margin_bottom = reactive(2)
            margin_left = reactive(7)

            ready = False

            # Mounted as the app closes, the plot's children are gone before its own mount hooks run;
            # these hooks then have nothing to lay out or draw, and must not raise.
            def _update_margin_sizes(self) -> None:
                if self.query("Grid"):
                    super()._update_margin_sizes()

            def notify_style_update(self) -> None:
                if self.query("Grid"):
                    super().notify_style_update()

            def on_mount(self, event: Any) -> None:
                if not self.query("#legend"):
                    # mounted as the app closes: its children are already gone, and PlotWidget's own on_mount
                    # (the base-class handler, run after this one) would fail on them
                    event.prevent_default()
                    return
                self.set_xlabel("train time (s)")
                self.set_ylabel("loss")
                self.show_legend(LegendLocation.TOPRIGHT)
                self.ready = True  # its canvases exist now: safe to draw
                chart = self.parent
                if isinstance(chart, LossChart) and chart._last_args is not None:
                    # PlotWidget's own on_mount clears the canvas after ours: draw once more after a refresh
                    self.call_after_refresh(lambda: chart.show(*chart._last_args))

            def render(self) -> Any:
                # A redraw sets each braille pixel on the canvases, and each set pixel asks the screen for a
                # refresh of its cell: thousands of refreshes, over half of a redraw's time. Batched, each
                # canvas asks once when the redraw is done.
                with ExitStack() as batch:
                    for canvas in self.query(Canvas):
                        batch.enter_context(canvas.batch_refresh())
                    return super().render()

            drawing = False  # LossChart is setting curves and limits, then calls draw_now

            def _rerender(self) -> None:
                # Each curve, limit or clear asks for a redraw and a refresh of the plot widget itself, whose
                # repaint (an empty container the size of the pane) is wasted: the canvases refresh on their
                # own once drawn. While LossChart sets the curves only the flag is kept; draw_now follows.
                if self.drawing:
                    self._needs_rerender = True
                else:
                    super()._rerender()

            legend_drawn: tuple | None = None  # (shown, labels, marks) of the legend as drawn

            def _update_legend(self) -> None:
                # PlotWidget rewrites its legend (a Static: a layout of the whole screen) on every clear and
                # every curve; LossChart redraws all curves at each new metric. Kept for draw_now, which
                # rewrites it once, and only when a label or a colour changed.
                if not self.drawing:
                    self.legend_drawn = None
                    super()._update_legend()

            def draw_now(self) -> None:
                """Draw the curves onto the canvases here, not in the next frame: PlotWidget draws them when
                the screen renders it, which put a chart redraw into the same frame as whatever else changed
                (a new suggestion's cards), one long stall instead of two short ones."""
                self.drawing = False
                marks = [(type(d).__name__, str(getattr(d, "line_style", None) or getattr(d, "marker_style", None)),
                          getattr(d, "hires_mode", None)) for d in self._datasets]  # a point and a line differ
                legend = (self.query_one("#legend").display, tuple(self._labels), tuple(marks))
                if legend != self.legend_drawn:
                    super()._update_legend()
                    self.legend_drawn = legend
                self.render()

        _PLOT_CLASS = LossPlot
    return _PLOT_CLASS


class LossChart(Vertical, can_focus=True):
    """Plot + caption. `series` holds what was last drawn (after downsampling)."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; }
    LossChart > LossPlot { height: 1fr; }
    LossChart > #chart-caption { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: list[ChartSeries] = []
        self.projection_ms: dict[str, float] = {}
        self.versus: tuple[float | None, str] = (None, "")  # (record time the projection is set against, mark)
        self._last_args: tuple | None = None
        self._drawn = False  # the plot holds self.series

    def compose(self) -> ComposeResult:
        yield Static("no runs yet: press r to train the current commit", id="chart-caption")

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_plot)

    async def _mount_plot(self) -> None:
        if not self.is_attached or self.query("#loss-plot"):
            return
        await self.mount(_plot_class()(id="loss-plot"), before=0)

    def _plot(self):  # type: ignore[no-untyped-def]
        found = self.query("#loss-plot")
        return found.first() if found and getattr(found.first(), "ready", False) else None

    def invalidate(self) -> None:
        """The next show() redraws even if no curve changed (new theme colours)."""
        self._drawn = False

    def on_resize(self) -> None:
        if self._last_args is not None:
            self.show(*self._last_args)

    def _colour(self, name: str) -> str:
        variables = self.app.theme_variables
        return variables.get(name) or self.app.current_theme.primary

    def show(self, runs: list[RunView], reference: list[MetricPoint], target: float | None) -> None:
        """Redraw from scratch for these runs (newest last), the reference curve and the target loss."""
        self._last_args = (runs, reference, target)
        max_points = max(16, 2 * max(1, self.size.width))
        series: list[ChartSeries] = []
        if reference:
            ref = [p for p in reference if p.val_loss is not None and p.train_time_ms is not None]
            xs, ys = downsample([p.train_time_ms / 1000 for p in ref], [p.val_loss for p in ref], max_points)  # type: ignore[operator,misc]
            if xs:
                series.append(ChartSeries("record", "reference", xs, ys))
        self.projection_ms = {}
        for run in runs:
            name = short_run_id(run.run_id)
            train = [p for p in run.train_points if p.train_time_ms is not None]
            if train:
                xs, ys = downsample([p.train_time_ms / 1000 for p in train], [p.train_loss for p in train], max_points)  # type: ignore[operator,misc]
                series.append(ChartSeries(f"{name} train", "train", xs, ys))
            val = [p for p in run.val_points if p.train_time_ms is not None]
            if val:
                xs, ys = downsample([p.train_time_ms / 1000 for p in val], [p.val_loss for p in val], max_points)  # type: ignore[operator,misc]
                series.append(ChartSeries(f"{name} val", "val", xs, ys))
            if run.is_live and target:
                projected = project_time_to_target(run.points, target)
                if projected is not None and val:
                    self.projection_ms[run.run_id] = projected
                    last = val[-1]
                    series.append(
                        ChartSeries(
                            f"{name} projected", "projection",
                            [last.train_time_ms / 1000, projected / 1000], [last.val_loss, target],  # type: ignore[operator,list-item]
                        )
                    )
        if target and series:
            x_lo = min(min(s.xs) for s in series if s.xs)
            x_hi = max(max(s.xs) for s in series if s.xs)
            series.append(ChartSeries(f"target {target:g}", "target", [x_lo, x_hi], [target, target]))
        unchanged = series == self.series and self._drawn
        self.series = series
        if not unchanged:  # a redraw also re-lays-out the legend: only when a curve changed
            self._draw()
        self._caption(runs, target)

    def _draw(self) -> None:
        plot = self._plot() if self.is_mounted else None
        if plot is None or not plot.is_attached or not plot.query("#legend"):
            self._drawn = False
            return  # not mounted yet, or being torn down (a layout flip, the app closing)
        self._drawn = True
        from textual_plot import HiResMode

        plot.drawing = True
        try:
            plot.clear()
            plot.show_legend(is_visible=bool(self.series))
            limits = y_range(self.series, self._last_args[2] if self._last_args else None)
            plot.set_ylimits(*(limits or (None, None)))
            plot.set_xlimits(0.0, None)
            colours = {
                "val": self._colour("chart-val"),
                "train": self._colour("chart-train"),
                "reference": self._colour("chart-reference"),
                "target": self._colour("chart-target"),
                "projection": self._colour("chart-projection"),
            }
            for s in self.series:
                if len(s.xs) == 1:
                    plot.scatter(s.xs, s.ys, marker_style=colours[s.kind], hires_mode=HiResMode.BRAILLE, label=s.label)
                elif s.xs:
                    plot.plot(s.xs, s.ys, line_style=colours[s.kind], hires_mode=HiResMode.BRAILLE, label=s.label)
        finally:
            plot.drawing = False
        plot.draw_now()

    def _caption(self, runs: list[RunView], target: float | None) -> None:
        found = self.query("#chart-caption") if self.is_mounted else None
        if not found:  # mid-remount (a layout flip): the next show draws it
            return
        caption = found.first(Static)
        if not runs:
            show(caption, "no runs selected: press r to train the current commit")
            return
        parts = []
        for run in runs[-3:]:
            best = run.best_val
            text = f"{short_run_id(run.run_id)}: {run.status}"
            if best is not None:
                text += f", best val {best:.4f}"
            if run.run_id in self.projection_ms:
                projected_s = self.projection_ms[run.run_id] / 1000
                text += f", target in ~{projected_s:.1f}s (projected"
                record_s, mark = self.versus
                versus = speedup_text(record_s, projected_s)
                text += f", {versus}{mark})" if versus != "—" else ")"
            parts.append(text)
        show(caption, " · ".join(parts))

