"""A small diff widget over difflib: unified-diff lines coloured with theme variables."""

from __future__ import annotations

import difflib
from typing import Iterable

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

KINDS = ("added", "removed", "context", "hunk", "header", "note")


def hunk_diff_lines(search: str, replace: str, context: int = 3) -> list[str]:
    """Unified-diff body lines (' ', '-', '+', '@@') turning `search` into `replace`, without file headers."""
    old, new = search.splitlines(), replace.splitlines()
    lines = list(difflib.unified_diff(old, new, lineterm="", n=context))
    return [line for line in lines if not line.startswith(("---", "+++"))]


def text_diff_lines(old: str, new: str, old_name: str = "a", new_name: str = "b", context: int = 3) -> list[str]:
    """Full unified diff between two texts, with file headers."""
    return list(
        difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=context)
    )


def line_kind(line: str) -> str:
    if line.startswith(("+++", "---", "diff ", "index ")):
        return "header"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "added"
    if line.startswith("-"):
        return "removed"
    return "context"


def diff_stats(lines: Iterable[str]) -> tuple[int, int]:
    """(added, removed) line counts, ignoring file headers."""
    added = removed = 0
    for line in lines:
        kind = line_kind(line)
        added += kind == "added"
        removed += kind == "removed"
    return added, removed


class DiffView(Widget):
    """Renders unified-diff lines; added/removed lines get full-width muted success/error backgrounds."""

    COMPONENT_CLASSES = {"diff--added", "diff--removed", "diff--context", "diff--hunk", "diff--header", "diff--note"}

    DEFAULT_CSS = """
    DiffView {
        height: auto;
        width: 1fr;
        & > .diff--added { background: $success-muted; color: $text; }
        & > .diff--removed { background: $error-muted; color: $text; }
        & > .diff--context { color: $text-muted; }
        & > .diff--hunk { color: $accent; text-style: bold; }
        & > .diff--header { color: $primary; text-style: bold; }
        & > .diff--note { color: $text-muted; }
    }
    """

    def __init__(self, lines: list[str] | None = None, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[str] = list(lines or [])
        self._rows_cache: tuple[int, list[tuple[str, str]]] | None = None
        self._styles_by_kind: tuple[str, dict[str, Style]] | None = None

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def set_lines(self, lines: list[str]) -> None:
        if lines == self._lines:
            return  # a re-layout of the screen costs tens of ms: only when the lines change
        self._lines = list(lines)
        self._forget_rows()

    def _rows(self, width: int) -> list[tuple[str, str]]:
        """(text, kind) per screen row, padded to the width: long lines wrap with a two-space continuation
        indent. Cached per width until the lines change."""
        width = max(4, width)
        if self._rows_cache is not None and self._rows_cache[0] == width:
            return self._rows_cache[1]
        rows: list[tuple[str, str]] = []
        for line in self._lines or ["(no changes)"]:
            kind = line_kind(line)
            text = line.expandtabs(4)
            rows.append((text[:width].ljust(width), kind))
            rest = text[width:]
            while rest:
                rows.append(("  " + rest[: width - 2].ljust(width - 2), kind))
                rest = rest[width - 2:]
        rows += self._rows_after(width)
        self._rows_cache = (width, rows)
        return rows

    def _rows_after(self, width: int) -> list[tuple[str, str]]:
        """Rows drawn under the diff, (text padded to the width, kind); a subclass adds its own."""
        return []

    def _forget_rows(self) -> None:
        """What the rows show changed without the lines changing: lay them out again."""
        self._rows_cache = None
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:  # type: ignore[override]
        return len(self._rows(width))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles_by_kind = None  # a theme change or a CSS reload

    def _style(self, kind: str) -> Style:
        key = self.app.theme
        if self._styles_by_kind is None or self._styles_by_kind[0] != key:
            self._styles_by_kind = (key, {name: self.get_component_rich_style(f"diff--{name}") for name in KINDS})
        return self._styles_by_kind[1][kind]

    def render_line(self, y: int) -> Strip:
        # a line API, not render(): a Text of the whole diff went through Rich's layout at every paint of the card
        rows = self._rows(self.size.width)
        if y >= len(rows):
            return Strip.blank(self.size.width, self.rich_style)
        text, kind = rows[y]
        style = self._style(kind)
        return Strip([Segment(text, style)]).crop_extend(0, self.size.width, style)  # by cells: wide characters
