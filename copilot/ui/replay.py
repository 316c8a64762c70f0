"""ReplayApp: a recorded session played back through the same projection and widgets as the live co-pilot.

Read-only: it never opens the session's event log for writing and takes no lock; scripts come from the session's
git history (or its bundle, cloned into a cache). The player (copilot.core.session.replay.ReplayPlayer) owns the timeline;
this app only renders `player.state` from one 0.1 s timer, redrawing the panes whose data changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Footer, Static, TextArea

from copilot.core.errors import SpeedcopilotError
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session.projection import RunView, SessionState, SuggestionView
from copilot.core.session.replay import ReplayClock, ReplayPlayer, fmt_clock, parse_time
from copilot.ui.screens.main import script_area, status_text, suggestion_body, suggestion_title
from copilot.ui.screens.modals import TextPrompt
from copilot.ui.themes import CHART_VARIABLES, DEFAULT_THEME, load_themes
from copilot.ui.widgets.history_tree import HistoryTree
from copilot.ui.widgets.hunk_card import DECISION_LABELS, HunkCard
from copilot.ui.widgets.loss_chart import LossChart
from copilot.ui.widgets.run_table import RunTable

FLUSH_INTERVAL_S = 0.1
SEEK_STEP_S = 10.0  # ←/→ move this many seconds of replay time (× speed on the recorded timeline)
CHART_RUNS = 4  # the newest runs drawn in the chart


def decisions_text(view: SuggestionView | None) -> str:
    """One line per decided hunk: the decision, how long the human took, and the feedback given."""
    if view is None:
        return ""
    lines = []
    for hunk in view.hunks:
        if hunk.decision is None:
            continue
        line = f"hunk {hunk.index + 1}: {DECISION_LABELS.get(hunk.decision, hunk.decision)}"
        if hunk.decision_time_s is not None:
            line += f" after {hunk.decision_time_s:.1f}s"
        if hunk.feedback:
            line += f" · feedback: {hunk.feedback}"
        lines.append(line)
    return "\n".join(lines)


class TimelineBar(Widget):
    """Position on the session's timeline, with a mark at every suggestion, decision and commit."""

    DEFAULT_CSS = """
    TimelineBar { height: 2; padding: 0 1; background: $panel; }
    """
    COMPONENT_CLASSES = {"timeline--done", "timeline--todo", "timeline--mark", "timeline--head"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.position = 0.0
        self.duration = 0.0
        self.marks: list[float] = []
        self.caption = ""

    def set(self, position: float, duration: float, marks: list[float], caption: str) -> None:
        if (position, duration, len(marks), caption) != (self.position, self.duration, len(self.marks), self.caption):
            self.position, self.duration, self.marks, self.caption = position, duration, marks, caption
            self.refresh()

    def render(self) -> Text:
        width = max(10, self.size.width - 2)
        done_style = self.get_component_rich_style("timeline--done")
        todo_style = self.get_component_rich_style("timeline--todo")
        mark_style = self.get_component_rich_style("timeline--mark")
        head = int(round((width - 1) * (self.position / self.duration))) if self.duration > 0 else 0
        cells = ["━" if i <= head else "─" for i in range(width)]
        marked = set()
        for mark in self.marks:
            i = int(round((width - 1) * (mark / self.duration))) if self.duration > 0 else 0
            marked.add(min(max(i, 0), width - 1))
        text = Text(no_wrap=True, overflow="crop")
        for i, cell in enumerate(cells):
            if i == head:
                text.append("●", self.get_component_rich_style("timeline--head"))
            elif i in marked:
                text.append("◆", mark_style)
            else:
                text.append(cell, done_style if i < head else todo_style)
        text.append("\n")
        text.append(self.caption)
        return text


TimelineBar.DEFAULT_CSS += """
TimelineBar > .timeline--done { color: $primary; }
TimelineBar > .timeline--todo { color: $text-muted; }
TimelineBar > .timeline--mark { color: $warning; }
TimelineBar > .timeline--head { color: $accent; text-style: bold; }
"""


class ReplayRunTable(RunTable):
    """The run table, plus a reset for seeking backwards (the live table only ever gains rows)."""

    def reset(self) -> None:
        self.clear()
        self._rows.clear()


_REPLAY_ACTIONS = frozenset({"toggle_pause", "next_decision", "previous_decision", "seek", "goto", "faster",
                             "slower", "quit_replay"})


class ReplayApp(App[int]):
    """Plays a ReplayPlayer's session; keys: space, n/p, ←/→, g, +/-, q."""

    TITLE = "speedcopilot replay"
    CSS = """
    #status-line { height: 1; background: $panel; color: $foreground; }
    .pane-title { height: 1; color: $text-muted; text-style: bold; padding: 0 1; }
    #top-row { height: 3fr; }
    #bottom-row { height: 2fr; }
    #script-pane, #suggestion-pane, #runs-pane, #chart-pane { width: 1fr; border: round $border-blurred; }
    #script-text { height: 1fr; border: none; }
    #suggestion-scroll { height: 1fr; padding: 0 1; }
    #suggestion-body, #decisions { height: auto; margin-bottom: 1; }
    #hunks { height: auto; }
    #run-table { height: auto; max-height: 50%; }
    #history-tree { height: 1fr; border-top: hkey $border-blurred; }
    ModalScreen { align: center middle; }
    .dialog { width: 64; max-width: 95%; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    .dialog-title { text-style: bold; width: 1fr; margin-bottom: 1; }
    .dialog-hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS = [
        Binding("space", "toggle_pause", "Play/pause", priority=True),
        Binding("n", "next_decision", "Next decision", priority=True),
        Binding("p", "previous_decision", "Prev decision", priority=True),
        Binding("left", "seek(-1)", "−10s", priority=True),
        Binding("right", "seek(1)", "+10s", priority=True),
        Binding("g", "goto", "Go to time", priority=True),
        Binding("plus,equals_sign", "faster", "Faster", priority=True),
        Binding("minus,underscore", "slower", "Slower", priority=True),
        Binding("q", "quit_replay", "Quit", priority=True),
    ]

    def __init__(
        self,
        player: ReplayPlayer,
        *,
        theme: str | None = None,
        autoplay: bool = True,
        clock: ReplayClock | None = None,
        theme_dirs: tuple[Path, ...] = (),
        reference_curve: list[MetricPoint] | None = None,
    ) -> None:
        super().__init__()
        self.player = player
        self.autoplay = autoplay
        self.clock = clock
        self._themes = load_themes(*theme_dirs)
        for item in self._themes:
            self.register_theme(item)
        self._initial_theme = theme or DEFAULT_THEME
        self._reference = reference_curve or []
        self.script_text = ""
        self.script_head: str | None = None
        self._rendered: int | None = None  # the player cursor last drawn
        self._rendered_events = -1  # and how many events it knew (a followed session grows)
        self._chart_settle = 1  # redraws once the plot is mounted
        self._shown_suggestion: tuple | None = None
        self._run_ids: list[str] = []
        self.renders = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="status-line")
        with Horizontal(id="top-row"):
            with Vertical(id="script-pane"):
                yield Static("script", id="script-title", classes="pane-title")
                yield script_area()
            with Vertical(id="suggestion-pane"):
                yield Static("", id="suggestion-title", classes="pane-title")
                with VerticalScroll(id="suggestion-scroll"):
                    yield Static("", id="decisions", markup=False)
                    yield Static("", id="suggestion-body", markup=False)
                    yield Vertical(id="hunks")
        with Horizontal(id="bottom-row"):
            with Vertical(id="runs-pane"):
                yield ReplayRunTable(id="run-table")
                yield HistoryTree(id="history-tree")
            with Vertical(id="chart-pane"):
                yield LossChart(id="loss-chart")
        yield TimelineBar(id="timeline")
        yield Footer()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        theme = self.current_theme
        return {name: getattr(theme, fallback, None) or theme.primary for name, fallback in CHART_VARIABLES.items()}

    def on_mount(self) -> None:
        try:
            self.theme = self._initial_theme
        except Exception:  # unknown theme name: keep going with ours
            self.theme = DEFAULT_THEME
        for problem in self.player.problems:
            self.notify(problem, severity="warning")
        self.flush()
        self.set_interval(FLUSH_INTERVAL_S, self.flush)
        if self.autoplay:
            self.start_playing()

    @property
    def _base(self) -> Any:
        """The replay's own screen (under any dialog that is open)."""
        return self.screen_stack[0] if self.screen_stack else self.screen

    def start_playing(self) -> None:
        if self.player.playing:
            return
        self.run_worker(self.player.play(clock=self.clock), name="player", group="player", exclusive=True,
                        exit_on_error=False)

    # -- the one flush ------------------------------------------------------------------------------
    def flush(self) -> None:
        player = self.player
        if not self.screen_stack or not self._base.query(TimelineBar):
            return  # the app is closing: a timer tick after its screen went away
        self._render_timeline()
        if self._chart_settle > 0:
            # LossChart mounts its plot after the first frame, and the plot's base class clears what was drawn
            # during its own mount; drawing again on the flushes after the plot exists makes the chart stick
            plots = self._base.query("#loss-chart #loss-plot")
            if plots and getattr(plots.first(), "ready", True):  # its mount (and the clearing) is over
                self._chart_settle -= 1
            self._show_chart(player.state)
        if self._rendered == player.cursor and self._rendered_events == len(player.events):
            return
        self._rendered = player.cursor
        self._rendered_events = len(player.events)
        self.renders += 1
        state = player.state
        self._base.query_one("#status-line", Static).update(status_text(state, len(state.live_runs)))
        self._render_script(state)
        self._render_suggestion(state)
        self._render_runs(state)
        self._base.query_one(HistoryTree).sync(state)

    def _render_timeline(self) -> None:
        player = self.player
        if player.at_end and not (player.follow and player.playing):
            mode = "■ end"
        elif player.paused:
            mode = "❚❚ paused"
        elif player.playing:
            mode = "▶ playing"
        else:
            mode = "■ stopped"
        if player.follow:
            mode += " · following"
        caption = (f"{mode} · {fmt_clock(player.position)} / {fmt_clock(player.duration)} · ×{player.speed:g}"
                   f" · event {player.cursor}/{len(player.events)}")
        self._base.query_one(TimelineBar).set(player.position, player.duration, player.decision_positions(), caption)

    def _render_script(self, state: SessionState) -> None:
        head = state.head
        if head == self.script_head:
            return
        self.script_head = head
        if not head:
            self._script_loaded(None, "", "")
            return
        self.load_script(head)

    @work(thread=True, group="git", exit_on_error=False)  # not exclusive: a stale result is dropped on arrival
    def load_script(self, head: str) -> None:
        try:
            text, error = self.player.script_at(head), ""
        except SpeedcopilotError as exc:
            text, error = "", str(exc)
        self.call_from_thread(self._script_loaded, head, text, error)

    def _script_loaded(self, head: str | None, text: str, error: str) -> None:
        if head != self.script_head:
            return  # a later seek asked for another commit
        self.script_text = text
        area = self._base.query_one("#script-text", TextArea)
        if area.text != text:
            area.load_text(text)
        title = f"script at {head[:7]}" if head else "script (no commit yet)"
        self._base.query_one("#script-title", Static).update(f"{title} · {error}" if error else title)

    def displayed_suggestion(self, state: SessionState) -> SuggestionView | None:
        return next(reversed(state.suggestions.values())) if state.suggestions else None

    def _render_suggestion(self, state: SessionState) -> None:
        view = self.displayed_suggestion(state)
        self._base.query_one("#suggestion-title", Static).update(suggestion_title(view, False))
        self._base.query_one("#suggestion-body", Static).update(suggestion_body(view, ""))
        self._base.query_one("#decisions", Static).update(decisions_text(view))
        box = self._base.query_one("#hunks")
        key = (view.id, len(view.hunks)) if view is not None else None
        if key != self._shown_suggestion:
            self._shown_suggestion = key
            box.remove_children()
            if view is not None and view.hunks:
                box.mount_all([HunkCard(h, len(view.hunks)) for h in view.hunks])
            return
        for card, hunk in zip(box.query(HunkCard), view.hunks if view else []):
            card.update_card(hunk, None, None)

    def _render_runs(self, state: SessionState) -> None:
        runs = list(state.runs.values())
        ids = [r.run_id for r in runs]
        table = self._base.query_one(ReplayRunTable)
        if ids[: len(self._run_ids)] != self._run_ids:  # sought backwards past a run: start the table afresh
            table.reset()
        self._run_ids = ids
        table.sync(runs, state.record_time_s)
        self._show_chart(state)

    def _show_chart(self, state: SessionState) -> None:
        self._base.query_one(LossChart).show(self.chart_runs(state), self._reference, state.target_val_loss or None)

    def chart_runs(self, state: SessionState) -> list[RunView]:
        return list(state.runs.values())[-CHART_RUNS:]

    # -- keys ---------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # the replay keys are priority bindings (the script, table and tree would swallow space and arrows);
        # while a dialog is open they must not steal its typing
        if len(self.screen_stack) > 1 and action in _REPLAY_ACTIONS:
            return False
        return True

    def action_toggle_pause(self) -> None:
        player = self.player
        if not player.playing:
            if player.at_end and not player.follow:
                player.rewind()
            player.resume()
            self.start_playing()
        else:
            player.toggle_pause()
        self.flush()

    def action_next_decision(self) -> None:
        if self.player.next_decision() is None:
            self.notify("no later decision", timeout=2)
        self.flush()

    def action_previous_decision(self) -> None:
        if self.player.previous_decision() is None:
            self.notify("no earlier decision", timeout=2)
        self.flush()

    def action_seek(self, direction: int) -> None:
        self.player.seek_relative(direction * SEEK_STEP_S * self.player.speed)
        self.flush()

    def action_faster(self) -> None:
        self.player.faster()
        self.flush()

    def action_slower(self) -> None:
        self.player.slower()
        self.flush()

    def action_goto(self) -> None:
        def done(text: str | None) -> None:
            if not text:
                return
            try:
                self.player.seek(parse_time(text))
            except ValueError as exc:
                self.notify(str(exc), severity="warning")
            self.flush()

        self.push_screen(TextPrompt(f"Jump to time (0 – {fmt_clock(self.player.duration)}; e.g. 95, 1:35, 2m)"),
                         done)

    def action_quit_replay(self) -> None:
        self.player.stop()
        self.exit(0)

    def on_worker_state_changed(self, event: Any) -> None:
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR:
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}", title="replay error",
                        severity="error", timeout=10)


def run_replay_app(player: ReplayPlayer, theme: str | None = None) -> int:
    app = ReplayApp(player, theme=theme)
    try:
        return int(app.run() or 0)
    finally:
        player.stop()


__all__ = ["ReplayApp", "TimelineBar", "decisions_text", "fmt_clock", "parse_time", "run_replay_app"]
