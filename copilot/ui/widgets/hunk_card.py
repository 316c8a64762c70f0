"""One proposed hunk: where it applies, its diff, and the human's decision (staged, or recorded)."""

from __future__ import annotations

import re
import textwrap

from textual.binding import Binding
from textual.message import Message

from copilot.core.edits import Hunk
from copilot.core.session.schema import HunkDecision
from copilot.ui.view import Preview
from copilot.ui.widgets.diff_view import DiffView, diff_stats, hunk_diff_lines

DECISION_LABELS = {"accept": "✔ accept", "reject": "✘ reject", "edit": "✎ edited"}
_HEADER = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@(.*)$")


def renumber(lines: list[str], first_line: int | None) -> list[str]:
    """Diff lines of a hunk, their @@ headers shifted to the file's own line numbers (the hunk's SEARCH starts
    at `first_line`); headers are dropped when the place is not known."""
    out = []
    for line in lines:
        m = _HEADER.match(line)
        if m is None:
            out.append(line)
        elif first_line is not None:
            shift = first_line - 1
            out.append(f"@@ -{int(m[1]) + shift}{m[2] or ''} +{int(m[3]) + shift}{m[4] or ''} @@{m[5]}")
    return out


def card_lines(hunk: Hunk, decision: HunkDecision | None, preview: Preview | None) -> list[str]:
    """The diff a card shows: what the hunk does at its match, or (edited) the human's replacement."""
    edited = decision is not None and decision.action == "edit" and decision.edited_replace is not None
    if preview is not None and preview.lines and not edited:
        return preview.lines
    replace = decision.edited_replace if edited and decision is not None else hunk.replace
    return renumber(hunk_diff_lines(hunk.search, replace or ""), preview.first_line if preview else None)


class HunkCard(DiffView, can_focus=True):
    """Focusable card; the focused card is the one `a`/`x`/`e`/`f` act on. One widget that draws its diff and the
    human's feedback by line, so a suggestion's cards add one widget each to every layout pass, not three."""

    BINDINGS = [
        Binding("enter", "app.apply", "Apply", show=False),
        Binding("down", "app.next_hunk", "Next hunk", show=False),
        Binding("up", "app.prev_hunk", "Previous hunk", show=False),
    ]

    class Selected(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    DEFAULT_CSS = """
    HunkCard { height: auto; border: round $border-blurred; padding: 0 1; margin: 0 0 1 0; }
    HunkCard:focus { border: round $primary; }
    HunkCard.-accept { border-title-color: $success; }
    HunkCard.-reject { border-title-color: $error; }
    HunkCard.-edit { border-title-color: $warning; }
    """

    def __init__(self, hunk: Hunk, total: int, recorded: HunkDecision | None = None,
                 staged: HunkDecision | None = None, preview: Preview | None = None) -> None:
        self.hunk = hunk
        self.total = total
        self.recorded = recorded
        self.staged = staged
        self.preview = preview
        self._feedback = ""
        # no id: a re-render may overlap the old cards' removal
        super().__init__(card_lines(hunk, self.decision, preview), classes=f"hunk-{hunk.index}")

    def on_mount(self) -> None:
        self._refresh_labels()

    @property
    def decision(self) -> HunkDecision | None:
        """The recorded decision first (it is final), else the staged one."""
        return self.recorded or self.staged

    def update_card(self, recorded: HunkDecision | None, staged: HunkDecision | None, preview: Preview | None) -> None:
        if (recorded, staged, preview) == (self.recorded, self.staged, self.preview):
            return
        self.recorded, self.staged, self.preview = recorded, staged, preview
        self.set_lines(card_lines(self.hunk, self.decision, self.preview))
        self._refresh_labels()

    def _rows_after(self, width: int) -> list[tuple[str, str]]:
        if not self._feedback:
            return []
        return [(line.ljust(width), "note") for line in textwrap.wrap(self._feedback, width) or [""]]

    def _refresh_labels(self) -> None:
        added, removed = diff_stats(self.lines)
        decision = self.decision
        action = decision.action if decision else None
        label = DECISION_LABELS.get(action or "", "undecided")
        if decision is not None and self.recorded is None:
            label += " (staged)"
        where = ""
        if self.preview is not None and self.preview.first_line is not None:
            where = f" · line {self.preview.first_line}"
        elif self.hunk.mode == "create":
            where = " · new file"
        self.border_title = f"hunk {self.hunk.index + 1}/{self.total} · {self.hunk.path}{where} · +{added} −{removed}"
        self.border_subtitle = label
        for name in ("accept", "reject", "edit"):
            self.set_class(action == name, f"-{name}")
        feedback = decision.feedback if decision else None
        text = f"feedback: {feedback}" if feedback else ""
        if text != self._feedback:
            self._feedback = text
            self._forget_rows()

    def on_focus(self) -> None:
        self.post_message(self.Selected(self.hunk.index))
