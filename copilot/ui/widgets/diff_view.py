"""A small diff widget over difflib: unified-diff lines coloured with theme variables."""

from __future__ import annotations

import difflib
from typing import Iterable

from rich.style import Style
from rich.text import Text
from textual.widget import Widget


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

    COMPONENT_CLASSES = {"diff--added", "diff--removed", "diff--context", "diff--hunk", "diff--header"}

    DEFAULT_CSS = """
    DiffView {
        height: auto;
        width: 1fr;
        & > .diff--added { background: $success-muted; color: $text; }
        & > .diff--removed { background: $error-muted; color: $text; }
        & > .diff--context { color: $text-muted; }
        & > .diff--hunk { color: $accent; text-style: bold; }
        & > .diff--header { color: $primary; text-style: bold; }
    }
    """

    def __init__(self, lines: list[str] | None = None, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[str] = list(lines or [])

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def set_lines(self, lines: list[str]) -> None:
        if lines == self._lines:
            return  # a re-layout of the screen costs tens of ms: only when the lines change
        self._lines = list(lines)
        self.refresh(layout=True)

    def _rows(self, width: int) -> list[tuple[str, str]]:
        """(text, kind) per screen row: long lines wrap with a two-space continuation indent."""
        width = max(4, width)
        rows: list[tuple[str, str]] = []
        for line in self._lines or ["(no changes)"]:
            kind = line_kind(line)
            text = line.expandtabs(4)
            rows.append((text[:width], kind))
            rest = text[width:]
            while rest:
                rows.append(("  " + rest[: width - 2], kind))
                rest = rest[width - 2:]
        return rows

    def get_content_height(self, container, viewport, width: int) -> int:  # type: ignore[override]
        return len(self._rows(width))

    def render(self) -> Text:
        width = max(4, self.size.width)
        styles: dict[str, Style] = {
            kind: self.get_component_rich_style(f"diff--{kind}")
            for kind in ("added", "removed", "context", "hunk", "header")
        }
        text = Text(no_wrap=True, overflow="crop")
        for number, (row, kind) in enumerate(self._rows(width)):
            if number:
                text.append("\n")
            text.append(row.ljust(width), styles[kind])
        return text
