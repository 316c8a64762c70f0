"""The script view: numbered lines at once, highlighting from a thread, marks, and an older highlight never shown."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from textual.app import App, ComposeResult

from copilot.ui.widgets.code_view import CodeView, highlight_lines
from tests.support.ui import screen_text, wait_until

SCRIPT = "\n".join(
    ["import math", "", "", "def lr(step: int) -> float:", '    """Cosine decay."""',
     "    return 0.5 * (1 + math.cos(math.pi * step / 100))", ""]
    + [f"VALUE_{i} = {i}  # a constant" for i in range(40)]
    + ["\tTABBED = 'a tab before me'", "x = '" + "long " * 40 + "'"]
)


class CodeApp(App[None]):
    def compose(self) -> ComposeResult:
        yield CodeView(id="code")


def _styles(view: CodeView, y: int) -> list[Any]:
    return [segment.style for segment in view.render_line(y)]


async def _shown(pilot: Any, view: CodeView, text: str) -> None:
    view.set_text(text)
    await wait_until(pilot, lambda: view.highlighted, what="the highlighting")
    await pilot.pause()


async def test_lines_are_numbered_and_highlighted_once_the_thread_is_back() -> None:
    app = CodeApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(CodeView)
        view.set_text(SCRIPT)
        assert not view.highlighted and view.text == SCRIPT
        plain = _styles(view, 3)  # `def lr(...)`, before the highlighting: one style for the code
        await wait_until(pilot, lambda: view.highlighted, what="the highlighting")
        await pilot.pause()
        shown = screen_text(app).splitlines()
        assert shown[0].startswith("  1 import math")  # numbers right-aligned to the widest, 49
        assert shown[3].startswith("  4 def lr(step: int) -> float:")
        highlighted = _styles(view, 3)
        assert len(set(highlighted[1:])) > 1 and len(set(plain[1:])) == 1  # keyword, name, types coloured


async def test_a_changed_text_keeps_the_colours_of_its_unchanged_lines_until_highlighted() -> None:
    app = CodeApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(CodeView)
        await _shown(pilot, view, SCRIPT)
        before = _styles(view, 3)
        view.set_text(SCRIPT.replace("import math", "import math  # changed"))
        assert not view.highlighted
        assert _styles(view, 3) == before  # not drawn plain while the thread works
        await wait_until(pilot, lambda: view.highlighted, what="the new highlighting")


async def test_an_older_highlight_never_replaces_a_newer_text() -> None:
    app = CodeApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(CodeView)
        view.set_text(SCRIPT)
        view.set_text("print('newest')")
        await wait_until(pilot, lambda: view.highlighted, what="the highlighting")
        await pilot.pause()
        assert view.text == "print('newest')"
        assert [c.plain for c in view._styled or []] == ["print('newest')"]
        assert screen_text(app).splitlines()[0].startswith(" 1 print('newest')")


async def test_marked_lines_are_shown_in_the_middle_with_their_own_background() -> None:
    app = CodeApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(CodeView)
        await _shown(pilot, view, SCRIPT)
        view.mark_lines(30, 31)
        await pilot.pause()
        assert view.marked_text == "VALUE_23 = 23  # a constant\nVALUE_24 = 24  # a constant"
        top = view.scroll_offset.y
        assert top < 30 and 31 < top + view.scrollable_content_region.height  # in view
        assert abs((30 - top) - (top + view.scrollable_content_region.height - 31)) <= 2  # near the middle
        marked_bg = _styles(view, 30 - top)[-1].bgcolor
        plain_bg = _styles(view, 29 - top)[-1].bgcolor
        assert marked_bg != plain_bg  # the padding after the code is marked too
        view.set_text(SCRIPT + "\n# more")
        assert view.marked_text == ""  # a new text drops the marks


async def test_tabs_expand_and_a_long_line_scrolls_under_a_fixed_gutter() -> None:
    app = CodeApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(CodeView)
        await _shown(pilot, view, SCRIPT)
        assert view.virtual_size.width > 80  # the long last line
        tabbed = len(SCRIPT.splitlines()) - 2
        view.scroll_to(x=10, y=view.max_scroll_y, animate=False)
        await pilot.pause()
        [row] = [row for row in screen_text(app).splitlines() if row.startswith(f" {tabbed + 1} ")]  # the number stays
        assert row[4:].startswith(" = 'a tab before me'")  # 10 cells of '    TABBED' scrolled off: the tab expanded


async def test_an_empty_text_shows_nothing_and_counts_as_highlighted() -> None:
    app = CodeApp()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(CodeView)
        await _shown(pilot, view, SCRIPT)
        view.set_text("")
        await pilot.pause()
        assert view.highlighted and screen_text(app).strip() == ""


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \t\n\r\x0b\x0c\u2028#'\"()=:x1\\")), max_size=60))
def test_highlighting_keeps_every_line_as_it_was(text: str) -> None:
    assert [content.plain for content in highlight_lines(text)] == text.splitlines()


def test_code_view_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = CodeApp()

    async def shown(pilot: Any) -> None:
        await _shown(pilot, app.query_one(CodeView), SCRIPT)
        app.query_one(CodeView).mark_lines(3, 5)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=shown)
