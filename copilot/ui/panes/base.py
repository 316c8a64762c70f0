"""What every pane shares: it renders itself from the View when a StateUpdated names one of its parts."""

from __future__ import annotations

from typing import Any

from textual.containers import Vertical
from textual.widgets import Static

from copilot.ui.view import HEAVY_PANES, Painted, StateUpdated, View


class Pane(Vertical):
    """A pane. `PARTS` are the dirty names it renders for (view.PANES)."""

    PARTS: frozenset[str] = frozenset()

    def on_state_updated(self, message: StateUpdated) -> None:
        if self.PARTS & message.dirty and self.is_mounted:
            self.render_view(message.view)
            if not self.PARTS.isdisjoint(HEAVY_PANES):
                self.call_after_refresh(self.post_message, Painted())

    def render_view(self, view: View) -> None:
        raise NotImplementedError


def show(widget: Static, content: Any, *, fixed_height: bool = False) -> None:
    """Update a Static only when what it shows changes. Every update of a Static re-lays-out the screen
    (~50 ms at 160×48 on a busy 2-core machine); a one-line widget of fixed height needs only a repaint."""
    if getattr(widget, "_shown", None) == content:
        return
    widget._shown = content  # type: ignore[attr-defined]
    widget.update(content, layout=not fixed_height)
