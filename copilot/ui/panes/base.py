"""What every pane shares: it renders itself from the View when a StateUpdated names one of its parts."""

from __future__ import annotations

from textual.containers import Vertical

from copilot.ui.view import StateUpdated, View


class Pane(Vertical):
    """A pane. `PARTS` are the dirty names it renders for (view.PANES)."""

    PARTS: frozenset[str] = frozenset()

    def on_state_updated(self, message: StateUpdated) -> None:
        if self.PARTS & message.dirty and self.is_mounted:
            self.render_view(message.view)

    def render_view(self, view: View) -> None:
        raise NotImplementedError
