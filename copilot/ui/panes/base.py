"""What every pane shares: it renders itself from the View when a StateUpdated names one of its parts."""

from __future__ import annotations

from textual.containers import Vertical
from textual.widget import Widget

from copilot.ui.view import HEAVY_PANES, Painted, StateUpdated, View


class Pane(Vertical):
    """A pane. `PARTS` are the dirty names it renders for (view.PANES)."""

    PARTS: frozenset[str] = frozenset()
    # False: while the pane is out of sight (an inactive tab) it keeps the newest view and renders it when shown.
    # For panes whose every change re-lays-out the whole screen even when hidden (Textual's Tree does).
    RENDERS_OUT_OF_SIGHT = True

    pending_view: View | None = None  # the newest view, kept while out of sight

    def on_state_updated(self, message: StateUpdated) -> None:
        if self.PARTS & message.dirty and self.is_mounted:
            if not self.RENDERS_OUT_OF_SIGHT and self.out_of_sight:
                self.pending_view = message.view
                return
            self.pending_view = None
            self.render_view(message.view)
            if not self.PARTS.isdisjoint(HEAVY_PANES):
                self.call_after_refresh(self.post_message, Painted())

    def render_pending(self) -> None:
        """Render the view kept while out of sight, if the pane is in sight now. The screen calls it when a tab
        is activated: Textual's Show event is not enough (after any scroll it is not sent for a tab shown)."""
        if self.pending_view is not None and not self.out_of_sight:
            view, self.pending_view = self.pending_view, None
            self.render_view(view)

    def on_show(self) -> None:
        self.render_pending()

    @property
    def out_of_sight(self) -> bool:
        """Hidden by itself or by an ancestor (a tab not shown)."""
        return any(not node.display for node in self.ancestors_with_self if isinstance(node, Widget))

    def render_view(self, view: View) -> None:
        raise NotImplementedError
