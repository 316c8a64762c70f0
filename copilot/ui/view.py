"""What the panes render: the session's projection, the UI's own transient state, and the message carrying both.

Data flows one way. Events arrive in the app's inbox (from any thread); one flush timer folds them into the
projection and posts one `StateUpdated` to every pane, naming the parts that changed; each pane renders itself
from the `View`. Key presses change `UIState` (staged decisions, the selected hunk, the diff toggle) and mark
panes dirty the same way. Nothing in a pane is state of its own that the view could not rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from textual.message import Message

from copilot.core.runs.metrics import MetricPoint
from copilot.core.session.projection import SessionState
from copilot.core.session.schema import HunkDecision
from copilot.ui.widgets.log_tail import LogBuffers

PANES = frozenset({"header", "suggestion", "script", "runs", "chart", "history", "timeline"})

# which panes an event type makes stale
DIRTY_BY_EVENT: dict[str, frozenset[str]] = {
    "session_started": frozenset({"header", "history", "script", "chart"}),
    "session_resumed": frozenset({"header"}),
    "suggestion_requested": frozenset({"suggestion"}),
    "suggestion_received": frozenset({"suggestion"}),
    "suggestion_failed": frozenset({"suggestion"}),
    "suggestion_decided": frozenset({"suggestion"}),
    "hunk_decided": frozenset({"suggestion"}),
    "commit_created": frozenset({"header", "history", "script", "suggestion"}),
    "commit_failed": frozenset({"suggestion"}),
    "branch_switched": frozenset({"header", "history", "script"}),
    "guard_report": frozenset({"runs", "history"}),
    "guard_override": frozenset({"runs", "history"}),
    "run_started": frozenset({"header", "runs", "chart", "history"}),
    "run_attached": frozenset({"runs"}),
    "run_running": frozenset({"runs", "history"}),
    "node_created": frozenset({"history"}),
    "node_scored": frozenset({"history"}),
    "metric": frozenset({"runs", "chart"}),
    "target_reached": frozenset({"header", "runs", "chart", "history"}),
    "run_finished": frozenset({"header", "runs", "chart", "history"}),
    "mode_changed": frozenset({"header"}),
    "session_ended": frozenset({"header"}),
}


@dataclass
class Preview:
    """What a hunk does at its match in the current file, and the first line it touches (1-based)."""

    lines: list[str]
    first_line: int | None = None


@dataclass
class UIState:
    """The app's own state: what the human has typed but not applied, and what the panes show."""

    staged: dict[tuple[str, int], HunkDecision] = field(default_factory=dict)  # decisions not yet applied
    shown_at: dict[tuple[str, int], float] = field(default_factory=dict)  # when each hunk card was first shown
    last_decision_at: dict[str, float] = field(default_factory=dict)
    previews: dict[tuple[str, int], Preview] = field(default_factory=dict)
    selected_hunk: int = 0
    stream: dict[str, str] = field(default_factory=dict)  # suggestion id ("" before it is known) -> streamed text
    logs: LogBuffers = field(default_factory=LogBuffers)
    pinned_runs: list[str] = field(default_factory=list)
    selected_run: str | None = None
    show_diff: bool = False
    script_text: str = ""
    script_head: str | None = None  # the commit the script text is of
    diff_text: str = ""
    requesting: bool = False  # a suggestion is being generated
    opening: bool = False  # the session is still being built
    reference: list[MetricPoint] = field(default_factory=list)  # the record's own val curve
    timeline: "Timeline | None" = None  # replay only


@dataclass(frozen=True)
class Timeline:
    """Where a replay is: position and length (recorded seconds), the decision marks, and a caption."""

    position: float
    duration: float
    marks: tuple[float, ...]
    caption: str


@dataclass(frozen=True)
class View:
    """Everything a pane may render."""

    state: SessionState
    ui: UIState
    driver: str  # copilot | agent | replay
    width: int = 200

    @property
    def live_runs(self) -> int:
        return len(self.state.live_runs)


class StateUpdated(Message):
    """The one message panes render from. Pending ones coalesce: the newest wins and inherits the dirty parts
    of those it replaces (toolong's `can_replace` habit), so a slow pane never falls behind a burst."""

    bubble = False

    def __init__(self, view: View, dirty: set[str]) -> None:
        super().__init__()
        self.view = view
        self.dirty = set(dirty)

    def can_replace(self, message: Message) -> bool:
        """Called on a queued update with a newer one behind it: the newer takes this one's dirty parts."""
        if isinstance(message, StateUpdated):
            message.dirty |= self.dirty
            return True
        return False


class RedrawWanted(Message):
    """A pane that held back a redraw (the chart draws at most every MIN_REDRAW_S) asks for its part to be
    dirty again: it redraws from the next flush's view, in its turn (RedrawTurns)."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part


def dirty_for(event_type: str) -> frozenset[str]:
    return DIRTY_BY_EVENT.get(event_type, frozenset())


# Panes that redraw a large part of the screen. Textual draws what changed in one frame, one callback on the loop:
# two of these redrawn by the same flush add up into one long stall (a new suggestion's cards, its diff in the
# script pane and a chart redraw made the agent node's worst frames, docs/benchmarks.md).
HEAVY_PANES = ("suggestion", "script", "runs", "chart")


class RedrawTurns:
    """Which dirty panes a flush redraws: every light pane, and one heavy pane, taking turns. A heavy pane left
    for later goes first at the next turn, so none waits more than len(HEAVY_PANES) turns (the one under way,
    then the others') however often another is dirty (a streaming suggestion is dirty at every flush).

    A turn ends when the pane's redraw has been painted (`painted()`, from a Painted message): on a busy loop
    Textual paints late, and two flushes' redraws would land in one frame. If no paint is reported within
    MAX_UNPAINTED_FLUSHES (a pane not on screen), the next turn starts anyway."""

    MAX_UNPAINTED_FLUSHES = 3

    def __init__(self) -> None:
        self._waiting: list[str] = []
        self._flushes_since_handout: int | None = None  # None: no heavy redraw waits to be painted

    def painted(self) -> None:
        self._flushes_since_handout = None

    def take(self, dirty: set[str]) -> tuple[set[str], set[str]]:
        """(redraw now, still dirty after this flush)."""
        heavy = [pane for pane in self._waiting if pane in dirty]
        heavy += [pane for pane in HEAVY_PANES if pane in dirty and pane not in heavy]
        if self._flushes_since_handout is not None:
            self._flushes_since_handout += 1
        busy = self._flushes_since_handout is not None and self._flushes_since_handout <= self.MAX_UNPAINTED_FLUSHES
        if busy:
            self._waiting = heavy
        else:
            self._waiting = heavy[1:]
            self._flushes_since_handout = 0 if heavy else None
        later = set(self._waiting)
        return dirty - later, later


class Painted(Message):
    """A heavy pane's redraw is on screen (posted after the refresh that followed it): the next turn may start."""


__all__ = [
    "DIRTY_BY_EVENT", "HEAVY_PANES", "PANES", "Painted", "Preview", "RedrawTurns", "RedrawWanted", "StateUpdated",
    "Timeline", "UIState", "View", "dirty_for",
]
