"""A read-only, highlighted view of the script, drawn line by line from cached strips.

Textual's TextArea re-queried the whole syntax tree and re-rendered every visible line on the loop each time the
script changed (a checkout, an applied suggestion, a commit): more than half of an agent node's longest stall.
Here a change costs the loop the lines it draws; the highlighting (pygments) runs on the loop in slices of a few
milliseconds between other work (a thread would hold the GIL against the loop for the whole lexing: 80 ms for a
500-line record, 450 ms for today's 2,400-line script), and until it is done the new text is drawn with the
colours of the lines it shares with the old one.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any, Iterator

from rich.cells import cell_len
from rich.segment import Segment
from textual.content import Content, Span
from textual.geometry import Size
from textual.highlight import HighlightTheme
from textual.scroll_view import ScrollView
from textual.strip import Strip

from copilot.ui.widgets.steady_scrollbars import SteadyScrollbars

TAB_SIZE = 4
SLICE_S = 0.003  # the longest one slice of highlighting keeps the loop
TOKENS_PER_LOOK = 64  # tokens lexed between looks at the clock (~1 ms)


def _style_of(token_type: Any, cache: dict[Any, str]) -> str:
    """The theme's style for a pygments token type, or its nearest ancestor's ('' for none)."""
    if (known := cache.get(token_type)) is not None:
        return known
    kind, style = token_type, ""
    while kind is not None:
        if (found := HighlightTheme.STYLES.get(kind)) is not None:
            style = found
            break
        kind = kind.parent
    cache[token_type] = style
    return style


def highlighting(text: str, language: str = "python") -> Iterator[list[Content] | None]:
    """Lex `text`, yielding None every TOKENS_PER_LOOK tokens (a chance to stop or pause), and last the list of
    highlighted lines, one Content per line of text.splitlines()."""
    from pygments.lexers import get_lexer_by_name  # at the first script, not before the app's first frame

    lines = text.splitlines()
    lexer = get_lexer_by_name(language, stripnl=False, ensurenl=True)
    styles: dict[Any, str] = {}
    out: list[Content] = []
    spans: list[Span] = []
    column = 0
    for count, (token_type, value) in enumerate(lexer.get_tokens("\n".join(lines)), 1):
        style = _style_of(token_type, styles)
        pieces = value.split("\n")
        for number, piece in enumerate(pieces):
            if number:  # a newline ended the line before this piece
                out.append(Content(lines[len(out)], spans=spans) if len(out) < len(lines) else Content(""))
                spans, column = [], 0
            if piece and style:
                spans.append(Span(column, column + len(piece), style))
            column += len(piece)
        if count % TOKENS_PER_LOOK == 0:
            yield None
    if len(out) < len(lines):
        out.append(Content(lines[len(out)], spans=spans))
    yield (out + [Content(line) for line in lines[len(out):]])[: len(lines)]


def highlight_lines(text: str, language: str = "python") -> list[Content]:
    """All of `highlighting` at once."""
    result: list[Content] | None = None
    for result in highlighting(text, language):
        pass
    return result or []


class CodeView(SteadyScrollbars, ScrollView, can_focus=True):
    """Shows `text` with line numbers; `mark_lines` highlights a range of lines and scrolls it to the middle."""

    COMPONENT_CLASSES = {"code-view--gutter", "code-view--marked"}

    DEFAULT_CSS = """
    CodeView {
        background: $surface;
        color: $text;
        & > .code-view--gutter { color: $text-muted; }
        & > .code-view--marked { background: $accent 30%; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = ""
        self._lines: list[str] = []
        self._styled: list[Content] | None = []  # highlighted lines of _text; None while highlighting runs
        self._known: dict[str, Content] = {}  # line text -> its highlighting, from the last highlighted text
        self._marked: tuple[int, int] | None = None
        self._strips: dict[int, Strip] = {}
        self._strips_key: Any = None
        self._generation = 0

    # -- what it shows ----------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self._text

    @property
    def highlighted(self) -> bool:
        """True once the text shown is drawn with its own highlighting (tests wait on this)."""
        return self._styled is not None

    @property
    def marked_text(self) -> str:
        if self._marked is None:
            return ""
        first, last = self._marked
        return "\n".join(self._lines[first : last + 1])

    def set_text(self, text: str) -> None:
        if text == self._text:
            return
        self._text, self._lines = text, text.splitlines()
        self._marked = None
        self._styled = None if self._lines else []
        self._generation += 1
        self._strips.clear()
        width = max((cell_len(line.expandtabs(TAB_SIZE)) for line in self._lines), default=0)
        self.virtual_size = Size(self._gutter_width() + width + 1, len(self._lines))
        self.refresh()
        if self._lines:
            self.run_worker(partial(self._highlight, self._generation, text), group="highlight", exclusive=True)

    def mark_lines(self, first: int, last: int) -> None:
        """Highlight lines first..last (0-based, inclusive) and scroll them to the middle of the view."""
        if not self._lines:
            return
        first = max(0, min(first, len(self._lines) - 1))
        last = max(first, min(last, len(self._lines) - 1))
        self._marked = (first, last)
        self._strips.clear()
        middle = first + (last - first) // 2
        self.scroll_to(y=max(0, middle - self.scrollable_content_region.height // 2), animate=False)
        self.refresh()

    async def _highlight(self, generation: int, text: str) -> None:
        styled: list[Content] | None = None
        started = time.perf_counter()
        for styled in highlighting(text):
            if generation != self._generation:
                return  # a newer text is on its way
            if time.perf_counter() - started > SLICE_S:
                await asyncio.sleep(0)  # let the loop answer keys and draw before the next slice
                started = time.perf_counter()
        if styled is None or generation != self._generation:
            return
        self._styled = styled
        self._known = {content.plain: content for content in styled}
        self._strips.clear()
        self.refresh()

    # -- drawing ----------------------------------------------------------------------------
    def _gutter_width(self) -> int:
        """The line numbers' column: the widest number, a space either side."""
        return len(str(max(1, len(self._lines)))) + 2

    def _line_content(self, index: int) -> Content:
        if self._styled is not None:
            return self._styled[index]
        line = self._lines[index]
        return self._known.get(line) or Content(line)

    def _line_strip(self, index: int) -> Strip:
        """The whole line (gutter excluded) as one strip, cached until the text, marks or theme change."""
        key = (self.app.theme, self.visual_style)
        if key != self._strips_key:
            self._strips.clear()
            self._strips_key = key
        if (cached := self._strips.get(index)) is not None:
            return cached
        base = self.get_visual_style("code-view--marked") if self._is_marked(index) else self.visual_style
        content = self._line_content(index).expand_tabs(TAB_SIZE)
        segments = [Segment(text, style.rich_style) for text, style in content.render(base, end="")]
        strip = self._strips[index] = Strip(segments)
        return strip

    def _is_marked(self, index: int) -> bool:
        return self._marked is not None and self._marked[0] <= index <= self._marked[1]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        plain = self.visual_style.rich_style  # cached by Textual; `rich_style` walks the ancestors each time
        if index >= len(self._lines):
            return Strip.blank(width, plain)
        style = self.get_component_rich_style("code-view--marked") if self._is_marked(index) else plain
        gutter_width = self._gutter_width()
        number = f"{index + 1:>{gutter_width - 1}} "
        gutter = Strip([Segment(number, self.get_component_rich_style("code-view--gutter"))])
        code_width = max(0, width - gutter_width)
        code = self._line_strip(index).crop_extend(scroll_x, scroll_x + code_width, style)
        return Strip.join([gutter, code])
