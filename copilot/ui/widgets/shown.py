"""Showing new text in a Static without re-laying out the screen when its size stays the same.

Every `Static.update` asks for a layout of the whole screen by default (a reflow: 5–25 ms at 160×48 on a
2-core machine, in every frame where a caption or status line changed). A Static whose size the new text
does not change needs only a repaint; one whose height follows its text needs a layout only when the
number of lines it wraps to changes.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


def show(widget: Static, content: Any, *, fixed_height: bool = False) -> None:
    """Show `content` in `widget` if it differs from what the widget shows; lay out only if its size moves."""
    if getattr(widget, "_shown", None) == content:
        return
    widget._shown = content  # type: ignore[attr-defined]
    if fixed_height:
        widget.update(content, layout=False)
        return
    before = _content_height(widget)
    widget.update(content, layout=False)
    after = _content_height(widget)
    if before is None or after != before:
        widget.refresh(layout=True)


def _content_height(widget: Static) -> int | None:
    """The lines the widget's text wraps to at its width now; None where that cannot be known without a
    layout (not laid out yet, or a width that follows its text)."""
    width = widget.content_size.width
    follows_text = widget.styles.width is not None and widget.styles.width.is_auto  # None: the container's width
    if not widget.is_mounted or width <= 0 or follows_text:
        return None
    return widget.visual.get_height(widget.styles, width)
