"""The script pane: the working copy's script at HEAD, or its diff against the starting record."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static, TextArea

from copilot.ui.panes.base import Pane, show
from copilot.ui.view import View
from copilot.ui.widgets.diff_view import DiffView


def script_area() -> TextArea:
    """The read-only, highlighted script view."""
    try:
        area = TextArea.code_editor("", language="python", read_only=True, theme="css", id="script-text")
    except Exception:  # no tree-sitter grammar installed (textual[syntax]): plain text still works
        area = TextArea.code_editor("", language=None, read_only=True, theme="css", id="script-text")
    area.cursor_blink = False
    return area


def show_text(area: TextArea, text: str) -> None:
    """Put `text` in the area. An edit of the document it holds, not a new one: a new document compiles the
    highlighting query again (~40 ms on the loop), an edit re-parses incrementally."""
    if not area.text:
        area.load_text(text)
        return
    area.replace(text, (0, 0), area.document.end, maintain_selection_offset=False)
    area.history.clear()  # read-only: nothing to undo, and old versions need not be kept
    area.move_cursor((0, 0))


class ScriptPane(Pane):
    PARTS = frozenset({"script"})

    def compose(self) -> ComposeResult:
        yield Static("", id="script-title", classes="pane-title")
        yield script_area()
        with VerticalScroll(id="script-diff-scroll"):
            yield DiffView([], id="script-diff")

    def render_view(self, view: View) -> None:
        ui = view.ui
        area = self.query_one("#script-text", TextArea)
        if area.text != ui.script_text:
            show_text(area, ui.script_text)
        self.query_one("#script-diff", DiffView).set_lines(ui.diff_text.splitlines())
        area.display = not ui.show_diff
        self.query_one("#script-diff-scroll").display = ui.show_diff
        head = (ui.script_head or view.state.head or "")[:7] or "?"
        what = "diff against the starting record" if ui.show_diff else "script"
        keys = " · d: toggle diff" + (" · E: $EDITOR" if view.driver == "copilot" else "")
        show(self.query_one("#script-title", Static), f"{what} at {head}{keys}", fixed_height=True)
