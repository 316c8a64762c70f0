"""Scroll views keep their scrollbars still through a layout pass that changed nothing about them, and still
follow their content and their size when those change."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from copilot.ui.widgets.code_view import CodeView
from copilot.ui.widgets.log_tail import LogTail
from tests.support.ui import wait_until

LINES = [f"line {i} " + "x" * (i % 90) for i in range(200)]


class ScrollApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("status", id="status")
        with Horizontal():
            yield CodeView(id="code")
            yield LogTail(id="log")


def _count_refreshes(widget: Any) -> list[int]:
    calls = [0]
    refresh = widget.refresh

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return refresh(*args, **kwargs)

    widget.refresh = counting
    return calls


async def _layouts(pilot: Any, app: ScrollApp, count: int) -> None:
    """Make `count` layout passes the way a pane does (a Static's new text) and wait until each was done."""
    screen = app.screen
    done = [0]
    refresh_layout = screen._refresh_layout

    def counting(*args: Any, **kwargs: Any) -> Any:
        done[0] += 1
        return refresh_layout(*args, **kwargs)

    screen._refresh_layout = counting  # type: ignore[method-assign]
    try:
        for i in range(count):
            before = done[0]
            app.query_one("#status", Static).update(f"status {i}")
            await wait_until(pilot, lambda: done[0] > before, what="the layout pass")
    finally:
        screen._refresh_layout = refresh_layout  # type: ignore[method-assign]


async def _filled(pilot: Any, app: ScrollApp) -> tuple[CodeView, LogTail]:
    code, log = app.query_one(CodeView), app.query_one(LogTail)
    code.set_text("\n".join(LINES))
    log.write_batch(LINES)
    await wait_until(pilot, lambda: code.vertical_scrollbar.window_virtual_size == len(LINES)
                     and log.vertical_scrollbar.window_virtual_size >= len(LINES), what="both views filled")
    await _layouts(pilot, app, 1)  # let the fill's own layout settle
    return code, log


async def test_a_layout_that_changes_nothing_in_a_scroll_view_leaves_its_scrollbars_alone() -> None:
    app = ScrollApp()
    async with app.run_test(size=(80, 24)) as pilot:
        code, log = await _filled(pilot, app)
        counts = {name: _count_refreshes(bar) for name, bar in [
            ("code vertical", code.vertical_scrollbar), ("code horizontal", code.horizontal_scrollbar),
            ("log vertical", log.vertical_scrollbar)]}
        await _layouts(pilot, app, 3)
        assert {name: calls[0] for name, calls in counts.items()} == {name: 0 for name in counts}


async def test_scrollbars_still_follow_new_content_and_a_new_size() -> None:
    app = ScrollApp()
    async with app.run_test(size=(80, 24)) as pilot:
        code, log = await _filled(pilot, app)
        code.set_text("\n".join(LINES * 3))
        log.write_batch(LINES)
        await wait_until(pilot, lambda: code.vertical_scrollbar.window_virtual_size == 3 * len(LINES)
                         and log.vertical_scrollbar.window_virtual_size >= 2 * len(LINES),
                         what="the scrollbars to take the new content")
        height = code.vertical_scrollbar.window_size
        await pilot.resize_terminal(80, 40)
        await wait_until(pilot, lambda: code.vertical_scrollbar.window_size == height + 16,
                         what="the scrollbar to take the new height")
        assert log.vertical_scrollbar.window_size > height
