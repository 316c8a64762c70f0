"""One proposed hunk: where it applies, its diff, and the human's (staged or recorded) decision."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from copilot.core.session.projection import HunkView
from copilot.ui.widgets.diff_view import DiffView, diff_stats, hunk_diff_lines

DECISION_LABELS = {"accept": "✔ accept", "reject": "✘ reject", "edit": "✎ edited"}


@dataclass
class StagedDecision:
    """A decision typed by the human but not yet applied (applying writes the hunk_decided events)."""

    action: str  # accept | reject | edit
    edited_replace: str | None = None
    feedback: str | None = None
    decision_time_s: float = 0.0


def card_lines(hunk: HunkView, staged: StagedDecision | None) -> list[str]:
    """The diff the card shows: the edited replacement when the human edited it."""
    replace = hunk.replace
    if staged is not None and staged.action == "edit" and staged.edited_replace is not None:
        replace = staged.edited_replace
    elif hunk.decision == "edit" and hunk.edited_replace is not None:
        replace = hunk.edited_replace
    return hunk_diff_lines(hunk.search, replace)


class HunkCard(Vertical, can_focus=True):
    """Focusable card; the focused card is the one `a`/`x`/`e`/`f` act on."""

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
    HunkCard > .hunk-note { color: $text-muted; height: auto; }
    """

    def __init__(self, hunk: HunkView, total: int, staged: StagedDecision | None = None,
                 preview: list[str] | None = None) -> None:
        super().__init__(classes=f"hunk-{hunk.index}")  # no id: a re-render may overlap the old cards' removal
        self.hunk = hunk
        self.total = total
        self.staged = staged
        self.preview = preview
        self._diff = DiffView(self._lines())
        self._note = Static("", classes="hunk-note")

    def compose(self) -> ComposeResult:
        yield self._diff
        yield self._note

    def on_mount(self) -> None:
        self._refresh_labels()

    def _lines(self) -> list[str]:
        editing = (self.staged and self.staged.action == "edit") or self.hunk.decision == "edit"
        if self.preview and not editing:
            return self.preview
        return card_lines(self.hunk, self.staged)

    @property
    def decision(self) -> str | None:
        """Recorded decision first (it is final), else the staged one."""
        if self.hunk.decision:
            return self.hunk.decision
        return self.staged.action if self.staged else None

    def update_card(self, hunk: HunkView, staged: StagedDecision | None, preview: list[str] | None) -> None:
        self.hunk, self.staged, self.preview = hunk, staged, preview
        self._diff.set_lines(self._lines())
        self._refresh_labels()

    def _refresh_labels(self) -> None:
        added, removed = diff_stats(self._lines())
        decision = self.decision
        label = DECISION_LABELS.get(decision or "", "undecided")
        if decision and not self.hunk.decision:
            label += " (staged)"
        self.border_title = f"hunk {self.hunk.index + 1}/{self.total} · {self.hunk.path} · +{added} −{removed}"
        self.border_subtitle = label
        for name in ("accept", "reject", "edit"):
            self.set_class(decision == name, f"-{name}")
        feedback = (self.staged.feedback if self.staged else None) or self.hunk.feedback
        note = self._note
        note.update(f"feedback: {feedback}" if feedback else "")
        note.display = bool(feedback)

    def on_focus(self) -> None:
        self.post_message(self.Selected(self.hunk.index))
