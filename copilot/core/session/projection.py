"""SessionState: the projection of a session's events that every driver renders.

Live mode applies each event as it is appended; replay feeds the recorded events to the same `apply`.
Nothing here reads git or the clock: state is a pure fold over events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from copilot.core.session.events import Event
from copilot.core.runs.metrics import MetricPoint


@dataclass
class HunkView:
    index: int
    path: str
    search: str
    replace: str
    decision: str | None = None  # "accept" | "reject" | "edit"
    edited_replace: str | None = None
    feedback: str | None = None
    decision_time_s: float | None = None
    mode: str = "replace"  # replace | create | append | insert_after (edits.HUNK_MODES)
    anchor: str | None = None

    @property
    def effective_replace(self) -> str:
        return self.edited_replace if self.decision == "edit" and self.edited_replace is not None else self.replace


@dataclass
class SuggestionView:
    id: str
    instruction: str | None = None
    status: str = "requested"  # requested | received | failed | decided
    rationale: str = ""
    hunks: list[HunkView] = field(default_factory=list)
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float | None = None
    requested_at: float | None = None
    received_at: float | None = None
    commit: str | None = None
    format: str | None = None  # the format the answer was written in
    finish_reason: str | None = None
    truncated: bool = False  # cut off by the token limit: only its complete blocks are here
    dropped_blocks: int = 0
    guard: dict[str, Any] | None = None  # the guard's report on the suggestion's result (blocking, findings)

    @property
    def undecided(self) -> list[HunkView]:
        return [h for h in self.hunks if h.decision is None]


@dataclass
class CommitView:
    sha: str
    parent: str | None
    branch: str
    provenance: str  # ai | human | ai+human-edit | revert | start
    message: str
    suggestion_id: str | None
    t: float


@dataclass
class RunView:
    run_id: str
    commit: str
    command: list[str]
    runner: str
    status: str  # "running" or an outcome string
    started_at: float
    points: list[MetricPoint] = field(default_factory=list)
    result: dict[str, Any] | None = None

    @property
    def val_points(self) -> list[MetricPoint]:
        return [p for p in self.points if p.val_loss is not None]

    @property
    def train_points(self) -> list[MetricPoint]:
        return [p for p in self.points if p.train_loss is not None]

    @property
    def last_point(self) -> MetricPoint | None:
        return self.points[-1] if self.points else None

    @property
    def best_val(self) -> float | None:
        losses = [p.val_loss for p in self.val_points if p.val_loss is not None]
        return min(losses) if losses else None

    @property
    def is_live(self) -> bool:
        return self.status == "running"


@dataclass
class SessionState:
    session_id: str = ""
    mode: str = "copilot"
    track: str = ""
    record: int = 0
    target_val_loss: float = 0.0
    provider: str = ""
    model: str = ""
    provider_label: str = ""
    offline: bool = False
    hint_levels: list[int] = field(default_factory=list)
    participant: str | None = None
    record_time_s: float | None = None
    next_record_time_s: float | None = None
    start_commit: str | None = None
    suggestions: dict[str, SuggestionView] = field(default_factory=dict)
    commits: list[CommitView] = field(default_factory=list)
    head: str | None = None
    branch: str | None = None
    runs: dict[str, RunView] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ended: bool = False
    last_seq: int = 0
    last_t: float | None = None
    started_t: float | None = None

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> "SessionState":
        state = cls()
        for event in events:
            state.apply(event)
        return state

    @property
    def current_suggestion(self) -> SuggestionView | None:
        """The latest suggestion, if it still waits for a response or decisions."""
        if not self.suggestions:
            return None
        latest = next(reversed(self.suggestions.values()))
        return latest if latest.status in ("requested", "received") else None

    @property
    def live_runs(self) -> list[RunView]:
        return [r for r in self.runs.values() if r.is_live]

    def best_time_to_target_ms(self) -> float | None:
        times = [
            r.result["time_to_target_ms"]
            for r in self.runs.values()
            if r.result and r.result.get("reached_target") and r.result.get("time_to_target_ms") is not None
        ]
        return min(times) if times else None

    def apply(self, event: Event) -> None:
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)
        self.last_seq = event.seq
        self.last_t = event.t
        if self.started_t is None:
            self.started_t = event.t


def _session_started(state: SessionState, e: Event) -> None:
    d = e.data
    state.session_id = d.get("session_id", state.session_id)
    state.mode = d.get("mode", "copilot")
    state.track = d.get("track", "")
    state.record = int(d.get("record", 0))
    state.target_val_loss = float(d.get("target_val_loss", 0.0))
    state.provider = d.get("provider", "")
    state.model = d.get("model", "")
    state.provider_label = d.get("provider_label", state.provider)
    state.offline = bool(d.get("offline", False))
    state.hint_levels = list(d.get("hint_levels", []))
    state.participant = d.get("participant")
    state.record_time_s = d.get("record_time_s")
    state.next_record_time_s = d.get("next_record_time_s")
    state.start_commit = d.get("start_commit")
    if state.start_commit:
        state.head = state.start_commit
        state.branch = d.get("branch", "main")
        state.commits.append(
            CommitView(state.start_commit, None, state.branch or "main", "start", "start", None, e.t)
        )


def _session_resumed(state: SessionState, e: Event) -> None:
    if e.get("provider"):
        state.provider = e.get("provider")
        state.model = e.get("model", state.model)
        state.provider_label = e.get("provider_label", state.provider)
        state.offline = bool(e.get("offline", state.offline))
    state.ended = False


def _suggestion_requested(state: SessionState, e: Event) -> None:
    sid = e.get("suggestion_id")
    state.suggestions[sid] = SuggestionView(id=sid, instruction=e.get("instruction"), requested_at=e.t)


def _suggestion_received(state: SessionState, e: Event) -> None:
    view = _suggestion(state, e.get("suggestion_id"), e.t)
    view.status = "received"
    view.rationale = e.get("rationale", "")
    view.hunks = [
        HunkView(index=h["index"], path=h["path"], search=h["search"], replace=h["replace"],
                 mode=h.get("mode") or ("create" if not h["search"] else "replace"), anchor=h.get("anchor"))
        for h in e.get("hunks", [])
    ]
    view.format = e.get("format")
    view.finish_reason = e.get("finish_reason")
    view.truncated = bool(e.get("truncated", False))
    view.dropped_blocks = int(e.get("dropped_blocks", 0) or 0)
    view.guard = e.get("guard")
    view.prompt_tokens = int(e.get("prompt_tokens", 0) or 0)
    view.completion_tokens = int(e.get("completion_tokens", 0) or 0)
    view.cost_usd = e.get("cost_usd")
    view.latency_s = e.get("latency_s")
    view.received_at = e.t


def _suggestion_failed(state: SessionState, e: Event) -> None:
    view = _suggestion(state, e.get("suggestion_id"), e.t)
    view.status = "failed"
    view.error = e.get("error")
    view.prompt_tokens = int(e.get("prompt_tokens", 0) or 0)
    view.completion_tokens = int(e.get("completion_tokens", 0) or 0)
    view.cost_usd = e.get("cost_usd")


def _hunk_decided(state: SessionState, e: Event) -> None:
    view = _suggestion(state, e.get("suggestion_id"), e.t)
    index = int(e.get("hunk_index"))
    for hunk in view.hunks:
        if hunk.index == index:
            hunk.decision = e.get("decision")
            hunk.edited_replace = e.get("edited_replace")
            hunk.feedback = e.get("feedback")
            hunk.decision_time_s = e.get("decision_time_s")
    if view.hunks and not view.undecided:
        view.status = "decided"


def _commit_created(state: SessionState, e: Event) -> None:
    commit = CommitView(
        sha=e.get("sha"),
        parent=e.get("parent"),
        branch=e.get("branch", state.branch or "main"),
        provenance=e.get("provenance", "ai"),
        message=e.get("message", ""),
        suggestion_id=e.get("suggestion_id"),
        t=e.t,
    )
    state.commits.append(commit)
    state.head = commit.sha
    state.branch = commit.branch
    if commit.suggestion_id and commit.suggestion_id in state.suggestions:
        state.suggestions[commit.suggestion_id].commit = commit.sha


def _branch_switched(state: SessionState, e: Event) -> None:
    state.head = e.get("sha")
    state.branch = e.get("branch")


def _run_started(state: SessionState, e: Event) -> None:
    run_id = e.get("run_id")
    state.runs[run_id] = RunView(
        run_id=run_id,
        commit=e.get("commit", ""),
        command=list(e.get("command", [])),
        runner=e.get("runner", "local"),
        status="running",
        started_at=e.t,
    )


def _metric(state: SessionState, e: Event) -> None:
    run = state.runs.get(e.get("run_id"))
    if run is not None:
        run.points.append(MetricPoint.from_event_fields(e.data))


def _run_finished(state: SessionState, e: Event) -> None:
    run = state.runs.get(e.get("run_id"))
    if run is not None:
        run.status = e.get("outcome", "finished")
        run.result = dict(e.data)


def _note(state: SessionState, e: Event) -> None:
    state.notes.append(e.get("text", ""))


def _error(state: SessionState, e: Event) -> None:
    state.errors.append(e.get("message", ""))


def _mode_changed(state: SessionState, e: Event) -> None:
    state.mode = e.get("mode", state.mode)


def _session_ended(state: SessionState, e: Event) -> None:
    state.ended = True


def _suggestion(state: SessionState, sid: str, t: float) -> SuggestionView:
    if sid not in state.suggestions:
        state.suggestions[sid] = SuggestionView(id=sid, requested_at=t)
    return state.suggestions[sid]


_HANDLERS = {
    "session_started": _session_started,
    "session_resumed": _session_resumed,
    "suggestion_requested": _suggestion_requested,
    "suggestion_received": _suggestion_received,
    "suggestion_failed": _suggestion_failed,
    "hunk_decided": _hunk_decided,
    "commit_created": _commit_created,
    "branch_switched": _branch_switched,
    "run_started": _run_started,
    "metric": _metric,
    "run_finished": _run_finished,
    "note": _note,
    "error": _error,
    "mode_changed": _mode_changed,
    "session_ended": _session_ended,
}
