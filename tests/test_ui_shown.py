"""`show` updates a Static and asks for a layout of the screen only when the text's height changes."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from copilot.ui.widgets.shown import show
from tests.support.ui import wait_until


class Caption(Static):
    DEFAULT_CSS = "Caption { height: auto; }"  # as the panes' captions: as wide as what holds them

    def __init__(self) -> None:
        super().__init__("")
        self.layouts = 0  # refreshes that asked for a layout

    def refresh(self, *regions, repaint=True, layout=False, recompose=False):  # type: ignore[no-untyped-def]
        self.layouts += bool(layout)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)


class CaptionApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Caption()


async def test_a_caption_is_laid_out_again_only_when_its_text_wraps_to_another_height() -> None:
    app = CaptionApp()
    async with app.run_test(size=(30, 10)) as pilot:
        caption = app.query_one(Caption)
        show(caption, "best val 3.4567")
        await wait_until(pilot, lambda: caption.size.height == 1 and "3.4567" in caption.render_line(0).text,
                         what="the first text drawn")
        before = caption.layouts
        show(caption, "best val 3.4012")  # one line still: a repaint is enough
        await wait_until(pilot, lambda: "3.4012" in caption.render_line(0).text, what="the new text drawn")
        assert caption.layouts == before
        show(caption, "best val 3.4012")  # the same text: nothing at all
        assert caption.layouts == before
        show(caption, "r1: running, best val 3.4012, target in ~83.0s (projected, 1.2× faster)")
        assert caption.layouts == before + 1
        await wait_until(pilot, lambda: caption.size.height == 3, what="the caption grown to three lines")
        show(caption, "r1: finished")  # back to one line: laid out again, not left three lines high
        await wait_until(pilot, lambda: caption.size.height == 1, what="the caption back to one line")


async def test_a_fixed_height_line_is_never_laid_out_again() -> None:
    app = CaptionApp()
    async with app.run_test(size=(30, 10)) as pilot:
        caption = app.query_one(Caption)
        await wait_until(pilot, lambda: caption.size.width == 30, what="the caption laid out")
        before = caption.layouts
        show(caption, "a title much longer than the thirty columns it has", fixed_height=True)
        await wait_until(pilot, lambda: "a title" in caption.render_line(0).text, what="the title drawn")
        assert caption.layouts == before
