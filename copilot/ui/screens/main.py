"""The main screen: the header line, five panes and the footer; split layout when large, tabs when small; the
replay's timeline bar when a replay drives it. The same screen serves every driver.

Panes keep no state of their own: the layout can be recomposed at any time (on resize across the threshold) and
every pane redraws itself from the next StateUpdated.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from copilot.ui.panes.base import Pane
from copilot.ui.panes.chart import ChartPane
from copilot.ui.panes.header import HeaderLine
from copilot.ui.panes.history import HistoryPane
from copilot.ui.panes.runs import RunsPane
from copilot.ui.panes.script import ScriptPane
from copilot.ui.panes.suggestion import SuggestionPane
from copilot.ui.panes.timeline import TimelineBar
from copilot.ui.widgets.quiet_footer import QuietFooter

WIDE_MIN_WIDTH = 120
WIDE_MIN_HEIGHT = 34
PANES = ("suggestion", "script", "runs", "chart", "history")
PANE_TITLES = {"suggestion": "Suggestion", "script": "Script", "runs": "Runs", "chart": "Loss", "history": "History"}


class MainScreen(Screen):
    """`wide` picks the layout and recomposes when it flips."""

    wide: reactive[bool] = reactive(False, recompose=True)
    opening: reactive[bool] = reactive(False, recompose=True)  # the session is still being built

    def __init__(self, *, replay: bool = False, log_tail_of: Any = None, opening: bool = False) -> None:
        super().__init__()
        self.replay = replay
        self.log_tail_of = log_tail_of
        self.set_reactive(MainScreen.opening, opening)

    def _pane(self, name: str, classes: str) -> Any:
        if name == "runs":
            return RunsPane(id=name, classes=classes, log_tail_of=self.log_tail_of)
        return {"suggestion": SuggestionPane, "script": ScriptPane, "chart": ChartPane,
                "history": HistoryPane}[name](id=name, classes=classes)

    def compose(self) -> ComposeResult:
        self._receivers: list[Any] = []
        if not self.is_mounted:  # the first compose: pick the layout for the terminal now, not after a recompose
            size = self.app.size
            self.set_reactive(MainScreen.wide, _is_wide(size.width, size.height))
        yield HeaderLine("", id="status-line")
        if self.opening:  # a light first frame: the panes come when the session is open
            yield Static("opening the session…", id="opening", classes="pane-note")
            yield QuietFooter(compact=True)
            return
        if self.wide:
            with Horizontal(id="top-row"):
                with TabbedContent(id="left-tabs", initial="pane-script"):
                    for name in ("script", "history"):
                        with TabPane(PANE_TITLES[name], id=f"pane-{name}"):
                            yield self._pane(name, "pane")
                yield self._pane("suggestion", "pane boxed")
            with Horizontal(id="bottom-row"):
                yield self._pane("runs", "pane boxed")
                yield self._pane("chart", "pane boxed")
        else:
            with TabbedContent(id="tabs", initial="pane-suggestion"):
                for name in PANES:
                    with TabPane(PANE_TITLES[name], id=f"pane-{name}"):
                        yield self._pane(name, "pane")
        if self.replay:
            yield TimelineBar(id="timeline")
        yield QuietFooter(compact=True)

    def on_mount(self) -> None:
        self._fit(self.size.width, self.size.height)
        for pane in self.query(".boxed"):
            pane.border_title = PANE_TITLES.get(pane.id or "", "")

    def on_resize(self, event: Any) -> None:
        self._fit(event.size.width, event.size.height)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        for pane in event.pane.query(Pane):  # a pane that waited out of sight draws its newest view now
            pane.render_pending()

    def _fit(self, width: int, height: int) -> None:
        self.wide = _is_wide(width, height)
        self.post_message(LayoutChanged())

    def watch_wide(self) -> None:
        self.call_after_refresh(self._relabel)

    def watch_opening(self) -> None:
        self.call_after_refresh(self._relabel)  # the recomposed panes draw at the next flush

    def _relabel(self) -> None:
        for pane in self.query(".boxed"):
            pane.border_title = PANE_TITLES.get(pane.id or "", "")
        self.post_message(LayoutChanged())

    def receivers(self) -> list[Any]:
        """Every widget that renders from StateUpdated. Kept between flushes (five DOM queries per flush cost
        more than the panes' own work); found again after a recompose, which replaces every pane."""
        expected = 1 + (0 if self.opening else len(PANES) + (1 if self.replay else 0))
        cached = getattr(self, "_receivers", None)
        if cached and len(cached) == expected and all(widget.is_attached for widget in cached):
            return cached
        found: list[Any] = list(self.query(HeaderLine))
        for name in PANES:
            found += list(self.query(f"#{name}"))
        found += list(self.query(TimelineBar))
        # mid-recompose the query sees old and new widgets, or some of the new: keep only a whole set
        self._receivers = found if len(found) == expected else []
        return found

    def broadcast(self, message_factory: Any) -> None:
        for receiver in self.receivers():
            receiver.post_message(message_factory())

    def show_pane(self, name: str, selected_hunk: int = 0) -> None:
        """Bring a pane to view (switching tabs when needed) and focus its main widget."""
        targets = {
            "suggestion": "#hunks HunkCard", "script": "#script-text", "runs": "#run-table",
            "chart": "#loss-chart", "history": "#history-tree",
        }
        found = list(self.query(targets[name]))
        if name == "script" and self.show_diff_scroll():
            found = list(self.query("#script-diff-scroll"))
        if name == "suggestion":
            position = min(max(selected_hunk, 0), len(found) - 1) if found else 0
            found = [found[position]] if found else list(self.query("#suggestion-scroll"))
        if found:
            # focusing is enough: TabbedContent shows the tab holding the focused widget. Switching the tab
            # first would hide the old focus and race Textual's own focus-next against ours.
            found[0].focus()
            return
        for tabs in self.query(TabbedContent):
            if tabs.query(f"#pane-{name}"):
                tabs.active = f"pane-{name}"

    def show_diff_scroll(self) -> bool:
        scroll = self.query("#script-diff-scroll")
        return bool(scroll) and scroll.first().display

    def pane_visible(self, name: str) -> bool:
        """True when the pane is on screen: in the split layout, or in the tab shown. The pane answers
        (`Pane.out_of_sight`), so the screen and the panes cannot disagree about it."""
        pane = self.query_one_optional(f"#{name}", Pane)  # an id lookup: cheap enough for every j/k
        return pane is not None and not pane.out_of_sight


def _is_wide(width: int, height: int) -> bool:
    return width >= WIDE_MIN_WIDTH and height >= WIDE_MIN_HEIGHT


class LayoutChanged(Message):
    """The layout flipped (or a pane was recomposed): every pane redraws at the next flush."""
