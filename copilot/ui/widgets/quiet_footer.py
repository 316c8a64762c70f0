"""A footer that rebuilds only when the keys it shows change.

Textual's Footer recomposes on every bindings signal: each focus change and each refresh_bindings. A recompose
unmounts and mounts every key widget, which re-applies CSS and re-lays-out the whole screen (≈ 30–100 ms on a
2-core machine at 160×48). Most signals change nothing the footer shows, so this one compares first; when only
which keys are enabled changed, it restyles the keys it has instead of building new ones.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class QuietFooter(Footer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[Any, ...] | None = None

    def bindings_changed(self, screen: Screen) -> None:
        # Footer's own handler (textual 8.2, pinned in pyproject) sets _bindings_ready and recomposes after refresh.
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    def shown_keys(self) -> tuple[Any, ...]:
        """What compose() would draw: every shown binding with whether it is enabled, and the palette key."""
        active = self.screen.active_bindings
        keys = tuple((b.key, b.action, b.description, b.group, enabled, tooltip)
                     for _node, b, enabled, tooltip in active.values() if b.show)
        return keys, self.compact, self.show_command_palette

    def _recompose_if_changed(self) -> None:
        if not self.is_attached:
            return
        shown = self.shown_keys()
        if shown == self._shown:
            return
        before, self._shown = self._shown, shown
        if before is not None and _layout_of(before) == _layout_of(shown) and self._restyle(shown):
            return
        self.refresh(recompose=True)

    def _restyle(self, shown: tuple[Any, ...]) -> bool:
        """Enable and disable the keys in place; False when the widgets on screen are not the expected ones."""
        keys, _compact, _palette = shown
        state: dict[str, bool] = {}
        for _key, action, _description, _group, enabled, _tooltip in keys:
            state.setdefault(action, enabled)
        widgets = list(self.query(FooterKey))
        if {w.action for w in widgets if w.action in state} != set(state):
            return False
        for widget in widgets:
            if widget.action in state:
                widget._disabled = not state[widget.action]  # what FooterKey reads on a click
                widget.set_class(not state[widget.action], "-disabled")
        return True


def _layout_of(shown: tuple[Any, ...]) -> tuple[Any, ...]:
    """The shown keys without their enabled state: what decides which widgets the footer has and says."""
    keys, compact, palette = shown
    return tuple(k[:4] + k[5:] for k in keys), compact, palette
