"""Main screen: five panes rendered from the app's SessionState. Split layout when large, tabs when small.

Panes keep no state of their own: the layout can be recomposed at any time (on resize across the threshold)
and every pane is redrawn from the projection plus the app's transient UI state (staged decisions, buffers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane, TextArea

from copilot.core.session.projection import SessionState, SuggestionView
from copilot.ui.widgets.diff_view import DiffView
from copilot.ui.widgets.history_tree import HistoryTree
from copilot.ui.widgets.log_tail import LogTail
from copilot.ui.widgets.loss_chart import LossChart
from copilot.ui.widgets.run_table import RunTable

if TYPE_CHECKING:
    from copilot.ui.app import CopilotApp

WIDE_MIN_WIDTH = 120
WIDE_MIN_HEIGHT = 34
PANES = ("suggestion", "script", "runs", "chart", "history")
PANE_TITLES = {"suggestion": "Suggestion", "script": "Script", "runs": "Runs", "chart": "Loss", "history": "History"}


def status_text(state: SessionState, live_runs: int = 0, width: int = 200) -> Text:
    """The header line: what is being worked on, against what, by which model, where HEAD is.

    Below 110 columns the badge and the mode go, so branch and commit still fit in 80.
    """
    compact = width < 110
    text = Text(no_wrap=True, overflow="ellipsis")
    if not compact:
        text.append(" speedcopilot ", style="bold reverse")
    text.append(f" {state.track or '?'} #{state.record}")
    if state.record_time_s:
        text.append(f" · record {state.record_time_s:g}s")
    if state.target_val_loss:
        text.append(f" · target {state.target_val_loss:g}")
    label = state.provider_label or state.provider or "no provider"
    if state.offline and "offline" not in label:
        label = f"offline {label}"
    text.append(" · ")
    text.append(label, style="bold" if state.offline else "")
    if not compact or state.mode != "copilot":
        text.append(f" · {state.mode}")
    if state.head:
        text.append(f" · {state.branch or '?'}@{state.head[:7]}")
    if live_runs:
        text.append(f" · {live_runs} live" if compact else f" · {live_runs} run{'s' if live_runs > 1 else ''} live",
                    style="bold")
    best = state.best_time_to_target_ms()
    if best is not None:
        text.append(f" · best {best / 1000:.1f}s")
    if state.ended:
        text.append(" · ended", style="italic")
    return text


class ScriptPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="script-title", classes="pane-title")
        yield script_area()
        with VerticalScroll(id="script-diff-scroll"):
            yield DiffView([], id="script-diff")


def script_area() -> TextArea:
    """The read-only, highlighted script view (shared with the replay app)."""
    try:
        area = TextArea.code_editor("", language="python", read_only=True, theme="css", id="script-text")
    except Exception:  # no tree-sitter grammar installed (textual[syntax]): plain text still works
        area = TextArea.code_editor("", language=None, read_only=True, theme="css", id="script-text")
    area.cursor_blink = False
    return area


class SuggestionPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="suggestion-title", classes="pane-title")
        with VerticalScroll(id="rationale-scroll"):
            yield Static("", id="suggestion-body", markup=False)
        with VerticalScroll(id="suggestion-scroll"):
            yield Vertical(id="hunks")
        yield Static("", id="suggestion-keys", classes="pane-hint")


class RunsPane(Vertical):
    BINDINGS = [Binding("ctrl+c", "app.cancel_run", "Cancel run", priority=False)]

    def compose(self) -> ComposeResult:
        yield RunTable(id="run-table")
        yield LogTail(id="log-tail")


class ChartPane(Vertical):
    def compose(self) -> ComposeResult:
        yield LossChart(id="loss-chart")


class HistoryPane(Vertical):
    def compose(self) -> ComposeResult:
        yield HistoryTree(id="history-tree")


PANE_CLASSES = {
    "suggestion": SuggestionPane, "script": ScriptPane, "runs": RunsPane, "chart": ChartPane, "history": HistoryPane,
}


class MainScreen(Screen):
    """Header line, the panes, footer. `wide` picks the layout and recomposes when it flips."""

    wide: reactive[bool] = reactive(False, recompose=True)

    def compose(self) -> ComposeResult:
        yield Static("", id="status-line")
        if self.wide:
            with Horizontal(id="top-row"):
                with TabbedContent(id="left-tabs", initial="pane-script"):
                    for name in ("script", "history"):
                        with TabPane(PANE_TITLES[name], id=f"pane-{name}"):
                            yield PANE_CLASSES[name](id=name, classes="pane")
                yield SuggestionPane(id="suggestion", classes="pane boxed")
            with Horizontal(id="bottom-row"):
                yield RunsPane(id="runs", classes="pane boxed")
                yield ChartPane(id="chart", classes="pane boxed")
        else:
            with TabbedContent(id="tabs", initial="pane-suggestion"):
                for name in PANES:
                    with TabPane(PANE_TITLES[name], id=f"pane-{name}"):
                        yield PANE_CLASSES[name](id=name, classes="pane")
        yield Footer()

    def on_mount(self) -> None:
        self._fit(self.size.width, self.size.height)

    def on_resize(self, event) -> None:  # type: ignore[no-untyped-def]
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        self.wide = width >= WIDE_MIN_WIDTH and height >= WIDE_MIN_HEIGHT
        mark = getattr(self.app, "mark_dirty", None)
        if mark is not None:
            mark("header", "chart")

    def watch_wide(self) -> None:
        app: CopilotApp = self.app  # type: ignore[assignment]
        self.call_after_refresh(app.invalidate_all)

    def show_pane(self, name: str) -> None:
        """Bring a pane to view (switching tabs when needed) and focus its main widget."""
        targets = {
            "suggestion": "#hunks HunkCard", "script": "#script-text", "runs": "#run-table",
            "chart": "#loss-chart", "history": "#history-tree",
        }
        found = self.query(targets[name])
        if name == "script" and self.show_diff_scroll():
            found = self.query("#script-diff-scroll")
        if name == "suggestion":
            cards = list(found)
            position = min(max(getattr(self.app, "selected_hunk", 0), 0), len(cards) - 1) if cards else 0
            found = [cards[position]] if cards else list(self.query("#suggestion-scroll"))
            if found:
                found[0].focus()
                return
        if found:
            # focusing is enough: TabbedContent shows the tab holding the focused widget. Switching the tab
            # first would hide the old focus and race Textual's own focus-next against ours.
            found.first().focus()
            return
        for tabs in self.query(TabbedContent):
            if tabs.query(f"#pane-{name}"):
                tabs.active = f"pane-{name}"

    def show_diff_scroll(self) -> bool:
        scroll = self.query("#script-diff-scroll")
        return bool(scroll) and scroll.first().display

    def pane_visible(self, name: str) -> bool:
        """True when the pane is on screen (always in the split layout, the active tab otherwise)."""
        if self.wide and name in ("suggestion", "runs", "chart"):
            return True
        for tabs in self.query(TabbedContent):
            if tabs.query(f"#pane-{name}"):
                return tabs.active == f"pane-{name}"
        return False

    def set_boxed_titles(self) -> None:
        for pane in self.query(".boxed"):
            pane.border_title = PANE_TITLES.get(pane.id or "", "")


def suggestion_title(view: SuggestionView | None, streaming: bool) -> str:
    if view is None:
        return "no suggestion yet · s: ask"
    parts = [f"suggestion {view.id}", view.status]
    if view.prompt_tokens or view.completion_tokens:
        parts.append(f"{view.prompt_tokens}+{view.completion_tokens} tok")
    if view.cost_usd is not None:
        parts.append(f"${view.cost_usd:.4f}")
    if view.latency_s is not None:
        parts.append(f"{view.latency_s:.1f}s")
    if streaming:
        parts.append("streaming…")
    return " · ".join(parts)


def suggestion_body(view: SuggestionView | None, stream_text: str) -> str:
    if view is None:
        return ""
    lines: list[str] = []
    if view.instruction:
        lines.append(f"you asked: {view.instruction}")
    if view.status == "requested":
        lines.append(stream_text or "waiting for the model…")
    elif view.status == "failed":
        lines.append(f"failed: {view.error or 'unknown error'}")
    else:
        lines.append(view.rationale or "(no rationale given)")
    if view.commit:
        lines.append(f"→ committed as {view.commit[:7]}")
    return "\n".join(lines)
