"""The script pane: the working copy's script at HEAD, or its diff against the starting record."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from copilot.ui.panes.base import Pane
from copilot.ui.widgets.shown import show
from copilot.ui.view import View
from copilot.ui.widgets.code_view import CodeView
from copilot.ui.widgets.diff_view import DiffView


class ScriptPane(Pane):
    PARTS = frozenset({"script"})

    def compose(self) -> ComposeResult:
        yield Static("", id="script-title", classes="pane-title")
        yield CodeView(id="script-text")
        with VerticalScroll(id="script-diff-scroll"):
            yield DiffView([], id="script-diff")

    def render_view(self, view: View) -> None:
        ui = view.ui
        area = self.query_one("#script-text", CodeView)
        area.set_text(ui.script_text)
        self.query_one("#script-diff", DiffView).set_lines(ui.diff_text.splitlines())
        area.display = not ui.show_diff
        self.query_one("#script-diff-scroll").display = ui.show_diff
        head = (ui.script_head or view.state.head or "")[:7] or "?"
        what = "diff against the starting record" if ui.show_diff else "script"
        keys = " · d: toggle diff" + (" · E: $EDITOR" if view.driver == "copilot" else "")
        show(self.query_one("#script-title", Static), f"{what} at {head}{keys}", fixed_height=True)
