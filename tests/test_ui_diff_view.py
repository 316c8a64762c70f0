"""The diff widget: rows wrap with an indent, every row fills the width in cells, colours follow kind and theme;
a hunk card is one such widget with the human's feedback drawn under the diff."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import Vertical

from copilot.core.edits import Hunk
from copilot.core.session.schema import HunkDecision
from copilot.ui.widgets.diff_view import DiffView
from copilot.ui.widgets.hunk_card import HunkCard
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


class CardApp(App[None]):
    CSS = "Vertical { width: 30; height: auto; }"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield HunkCard(Hunk(0, "train.py", "lr = 0.1\n", "lr = 0.2\n"), 1)


async def test_a_card_draws_the_feedback_under_its_diff_wrapped_by_words_and_drops_it_with_the_decision() -> None:
    app = CardApp()
    async with app.run_test(size=(40, 16)) as pilot:
        card = app.query_one(HunkCard)
        await wait_until(pilot, lambda: card.size.height == 2, what="the card laid out (-, +; no @@ where the place is unknown)")
        assert len(card.children) == 0  # one widget per card: every layout pass arranges it as one
        card.update_card(None, HunkDecision(0, "reject", feedback="keep the old rate until warmup ends"), None)
        await wait_until(pilot, lambda: card.size.height == 4, what="the feedback's two rows laid out")
        rows = [card.render_line(y).text.rstrip() for y in range(4)]
        assert rows[2:] == ["feedback: keep the old", "rate until warmup ends"]  # 26 cells inside border and padding
        assert card.border_subtitle == "✘ reject (staged)"
        muted, removed = list(card.render_line(2))[0].style, list(card.render_line(0))[0].style
        assert muted.color != removed.color or muted.bgcolor != removed.bgcolor
        card.update_card(None, None, None)
        await wait_until(pilot, lambda: card.size.height == 2, what="the feedback gone with the decision")
