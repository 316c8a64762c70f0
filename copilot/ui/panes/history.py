"""The history pane: every commit as a tree by parent, with its runs."""

from __future__ import annotations

from textual.app import ComposeResult

from copilot.ui.panes.base import Pane
from copilot.ui.view import View
from copilot.ui.widgets.history_tree import HistoryTree


class HistoryPane(Pane):
    PARTS = frozenset({"history"})
    RENDERS_OUT_OF_SIGHT = False  # each rebuild or relabel of the tree re-lays-out the screen, seen or not

    def compose(self) -> ComposeResult:
        yield HistoryTree(id="history-tree")

    def render_view(self, view: View) -> None:
        self.query_one(HistoryTree).sync(view.state)
