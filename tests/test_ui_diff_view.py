"""The diff widget: rows wrap with an indent, every row fills the width in cells, colours follow kind and theme."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import Vertical

from copilot.ui.widgets.diff_view import DiffView
from tests.support.ui import screen_text, wait_until

WIDTH = 20
LINES = ["@@ -1,2 +1,2 @@", "-" + "x" * 45, "+日本語の行がここに長く続く", " context"]


class DiffApp(App[None]):
    CSS = f"Vertical {{ width: {WIDTH}; height: auto; }}"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DiffView(LINES, id="diff")


async def test_rows_wrap_fill_the_width_and_take_their_kind_s_colours() -> None:
    app = DiffApp()
    async with app.run_test(size=(40, 12)) as pilot:
        view = app.query_one(DiffView)
        await wait_until(pilot, lambda: view.size.height == 6, what="the diff laid out (1 + 3 wrapped + 1 + 1 rows)")
        shown = [row[:WIDTH] for row in screen_text(app).splitlines()[:6]]
        assert shown[0].startswith("@@ -1,2 +1,2 @@")
        assert shown[1] == "-" + "x" * 19 and shown[2] == "  " + "x" * 18 and shown[3] == "  " + "x" * 8 + " " * 10
        assert shown[4].startswith("+日本語の行がここに")  # wide characters cropped by cells, not by characters
        strips = [view.render_line(y) for y in range(6)]
        assert all(strip.cell_length == WIDTH for strip in strips)
        removed, added, context = (strips[1], strips[4], strips[5])
        backgrounds = {name: {seg.style.bgcolor for seg in strip if seg.text.strip()}
                       for name, strip in (("removed", removed), ("added", added), ("context", context))}
        assert len({frozenset(v) for v in backgrounds.values()}) == 3


async def test_new_lines_and_a_new_theme_are_drawn_not_the_cached_rows() -> None:
    app = DiffApp()
    async with app.run_test(size=(40, 12)) as pilot:
        view = app.query_one(DiffView)
        await wait_until(pilot, lambda: view.size.height == 6, what="the diff laid out")
        before = list(view.render_line(4))[0].style
        view.set_lines(["+only"])
        await wait_until(pilot, lambda: view.size.height == 1, what="the new diff laid out")
        assert view.render_line(0).text.startswith("+only")
        added = list(view.render_line(0))[0].style
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await wait_until(pilot, lambda: list(view.render_line(0))[0].style != added, what="the new theme's colours")
        assert before == added  # the same kind, the same theme: the same style
