"""Scroll views that leave their scrollbars alone when a layout pass changed nothing about them.

Textual (8.2.8, pinned) calls `_size_updated` on every widget at every layout pass of the screen. For a line-API
`ScrollView` (our CodeView, Log, DataTable, Tree) the virtual size the layout passes in is the view's visible
size, never the content size the view keeps itself, so the two always differ and every layout re-arranges and
repaints the view's scrollbars and sends it a Resize. Each of those scrollbars is a dirty region; at the screen's
edges they stretch the rectangle Textual repaints to most of the screen, even when what changed was one line of
another pane (measured: docs/benchmarks.md, "2026-12-02, scrollbars").

`SteadyScrollbars` skips the call when nothing it depends on moved since the last one: the sizes the layout
passes in, the content size, and the overflow and scrollbar styles. Anything else still goes through Textual.
"""

from __future__ import annotations

from typing import Any

from textual.geometry import Size


class SteadyScrollbars:
    """Mix in before the Textual scroll view class: `class CodeView(SteadyScrollbars, ScrollView)`."""

    _last_layout_inputs: tuple[Any, ...] | None = None

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        styles = self.styles  # type: ignore[attr-defined]
        inputs = (size, virtual_size, container_size, self.virtual_size,  # type: ignore[attr-defined]
                  styles.overflow_x, styles.overflow_y,
                  styles.scrollbar_size_vertical, styles.scrollbar_size_horizontal)
        if inputs == self._last_layout_inputs:
            return False
        self._last_layout_inputs = inputs
        return super()._size_updated(size, virtual_size, container_size, layout)  # type: ignore[misc]
