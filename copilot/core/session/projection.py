"""SessionState: the projection of a session's events that every driver renders.

Live mode applies each event as it is appended; replay feeds the recorded events to the same `apply`.
Nothing here reads git or the clock: state is a pure fold over the typed event bodies (schema.py).

Metric events are the bulk of a log (one per training step). A run keeps their fields as they were read and
turns them into MetricPoints only when something asks for its points, so loading a long session costs a list
append per metric event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from copilot.core.edits.model import Hunk
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session import schema as s
from copilot.core.session.events import Event


@dataclass
class SuggestionView:
    id: str
    instruction: str | None = None
    status: str = "requested"  # requested | received | failed | decided
    rationale: str = ""
    hunks: list[Hunk] = field(default_factory=list)
    decisions: dict[int, s.HunkDecision] = field(default_factory=dict)  # by hunk index, once decided
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
    def undecided(self) -> list[Hunk]:
        return [h for h in self.hunks if h.index not in self.decisions]

    def decision(self, index: int) -> s.HunkDecision | None:
        return self.decisions.get(index)


@dataclass
class CommitView:
    sha: str
    parent: str | None
    branch: str
    provenance: str  # ai | human | ai+human-edit | revert | start
    message: str
    suggestion_id: str | None
    t: float


class _Points:
    """A run's metric points: the raw fields as read, turned into MetricPoints on first access."""

    __slots__ = ("_raw", "_points")

    def __init__(self) -> None:
        self._raw: list[dict[str, Any]] = []
        self._points: list[MetricPoint] = []

    def add(self, data: dict[str, Any]) -> None:
        self._raw.append(data)

    def materialized(self) -> list[MetricPoint]:
        if len(self._points) < len(self._raw):
            self._points.extend(s.Metric.point_from(d) for d in self._raw[len(self._points):])
        return self._points

    def __len__(self) -> int:
        return len(self._raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Points) and self._raw == other._raw

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __deepcopy__(self, memo: dict[int, Any]) -> "_Points":
        """A copy for replay checkpoints: the lists are new, their items (read-only fields, frozen points) shared."""
        copy = _Points()
        copy._raw = list(self._raw)
        copy._points = list(self._points)
        return copy


@dataclass
class RunView:
    run_id: str
    commit: str
    command: list[str]
    runner: str
    status: str  # "running" or an outcome string
    started_at: float
    result: dict[str, Any] | None = None
    target: dict[str, Any] | None = None  # TargetReached fields, the moment the target is seen
    stop_at_target: bool = False
    node_id: int | None = None  # the agent's search node this run scores
    queued: bool = False  # a scheduler holds it: no run time passes yet
    running_since: float | None = None  # unix s its run time started (None while queued)
    queue_time_s: float | None = None
    _points: _Points = field(default_factory=_Points, repr=False)

    @property
    def points(self) -> list[MetricPoint]:
        return self._points.materialized()

    @property
    def point_count(self) -> int:
        return len(self._points)

    @property
    def val_points(self) -> list[MetricPoint]:
        return [p for p in self.points if p.val_loss is not None]

    @property
    def train_points(self) -> list[MetricPoint]:
        return [p for p in self.points if p.train_loss is not None]

    @property
    def last_point(self) -> MetricPoint | None:
        points = self.points
        return points[-1] if points else None

    @property
    def best_val(self) -> float | None:
        losses = [p.val_loss for p in self.val_points if p.val_loss is not None]
        return min(losses) if losses else None

    @property
    def is_live(self) -> bool:
        return self.status == "running"

    @property
    def phase(self) -> str:
        """queued | running | done"""
        if not self.is_live:
            return "done"
        return "queued" if self.queued else "running"

    def run_seconds(self, now: float) -> float:
        """Seconds of run time so far (a live run's; queue time excluded); a finished run's wall time."""
        if not self.is_live:
            return float((self.result or {}).get("wall_time_s") or 0.0)
        return max(0.0, now - self.running_since) if self.running_since is not None else 0.0

    @property
    def reached_target(self) -> bool:
        """The target was seen (live, or in the finished result)."""
        return self.target is not None or bool((self.result or {}).get("reached_target"))

    @property
    def time_to_target_ms(self) -> float | None:
        if self.result and self.result.get("time_to_target_ms") is not None:
            return self.result["time_to_target_ms"]
        return self.target.get("time_to_target_ms") if self.target else None


@dataclass
class NodeView:
    """One node of the agent's search, as far as a display needs it (the agent keeps its own richer tree)."""

    id: int
    parent: int | None
    commit: str | None
    kind: str
    run_ids: list[str] = field(default_factory=list)
    scored: bool = False
    buggy: bool = False
    outcome: str | None = None

    @property
    def label(self) -> str:
        return "root" if self.id == 0 else f"node {self.id}"


@dataclass
class SessionState:
    session_id: str = ""
    mode: str = "copilot"
    agent_drove: bool = False  # the agent has driven this session: a human who took over may hand it back
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
    baseline: dict[str, Any] | None = None  # the latest baseline_chosen's fields (source, times, noise, reason)
    start_commit: str | None = None
    suggestions: dict[str, SuggestionView] = field(default_factory=dict)
    commits: list[CommitView] = field(default_factory=list)
    head: str | None = None
    branch: str | None = None
    runs: dict[str, RunView] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    guard_reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # by commit
    guard_overrides: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[int, NodeView] = field(default_factory=dict)  # the agent's search nodes, by id
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

    def node_of_commit(self, sha: str) -> NodeView | None:
        """The latest search node whose code is `sha`."""
        found = [n for n in self.nodes.values() if n.commit == sha]
        return found[-1] if found else None

    def node_phase(self, node: NodeView) -> str:
        """preparing (no run yet) | queued | running | done (scored, or its run ended and awaits scoring)"""
        if node.scored:
            return "done"
        run = self.runs.get(node.run_ids[-1]) if node.run_ids else None
        return run.phase if run is not None else "preparing"

    def baseline_times(self) -> tuple[float | None, float | None, bool]:
        """(t_i, t_{i+1}, same_machine): the times of the baseline the session chose when they were measured
        on its machine, else the catalogue's (measured elsewhere)."""
        chosen = self.baseline or {}
        same = chosen.get("source", "same_machine") == "same_machine" and chosen.get("record_time_s") is not None
        if same:
            return chosen.get("record_time_s"), chosen.get("next_record_time_s"), True
        return self.record_time_s, self.next_record_time_s, False

    def best_time_to_target_ms(self) -> float | None:
        times = [r.time_to_target_ms for r in self.runs.values()
                 if r.reached_target and r.time_to_target_ms is not None]
        return min(times) if times else None

    def apply(self, event: Event) -> None:
        if event.type == "metric":  # the hot path: no typed body needed to append the fields
            data = event.data
            run = self.runs.get(data.get("run_id"))
            if run is not None and "step" in data:
                run._points.add(data)
        else:
            handler = _HANDLERS.get(type(event.body))
            if handler is not None:
                handler(self, event.body, event.t)
        if event.seq > self.last_seq:
            self.last_seq = event.seq
        self.last_t = event.t
        if self.started_t is None:
            self.started_t = event.t


def _session_started(state: SessionState, b: s.SessionStarted, t: float) -> None:
    state.session_id = b.session_id or state.session_id
    state.mode = b.mode
    state.agent_drove = b.mode == "auto"
    state.track = b.track
    state.record = b.record
    state.target_val_loss = b.target_val_loss
    state.provider = b.provider
    state.model = b.model
    state.provider_label = b.provider_label or b.provider
    state.offline = b.offline
    state.hint_levels = list(b.hint_levels)
    state.participant = b.participant
    state.record_time_s = b.record_time_s
    state.next_record_time_s = b.next_record_time_s
    state.baseline = b.baseline
    state.start_commit = b.start_commit
    if b.start_commit:
        state.head = b.start_commit
        state.branch = b.branch or "main"
        state.commits.append(CommitView(b.start_commit, None, state.branch, "start", "start", None, t))


def _baseline_chosen(state: SessionState, b: s.BaselineChosen, t: float) -> None:
    state.baseline = b.to_dict()


def _session_resumed(state: SessionState, b: s.SessionResumed, t: float) -> None:
    if b.provider:
        state.provider = b.provider
        state.model = b.model or state.model
        state.provider_label = b.provider_label or b.provider
        state.offline = bool(b.offline) if b.offline is not None else state.offline
    state.ended = False


def _suggestion_requested(state: SessionState, b: s.SuggestionRequested, t: float) -> None:
    state.suggestions[b.suggestion_id] = SuggestionView(id=b.suggestion_id, instruction=b.instruction,
                                                        requested_at=t)


def _suggestion_received(state: SessionState, b: s.SuggestionReceived, t: float) -> None:
    view = _suggestion(state, b.suggestion_id, t)
    view.status = "received"
    view.rationale = b.rationale
    view.hunks = list(b.hunks)
    view.prompt_tokens = b.prompt_tokens
    view.completion_tokens = b.completion_tokens
    view.cost_usd = b.cost_usd
    view.latency_s = b.latency_s
    view.received_at = t
    view.format = b.format
    view.finish_reason = b.finish_reason
    view.truncated = b.truncated
    view.dropped_blocks = b.dropped_blocks
    view.guard = b.guard


def _suggestion_failed(state: SessionState, b: s.SuggestionFailed, t: float) -> None:
    view = _suggestion(state, b.suggestion_id, t)
    view.status = "failed"
    view.error = b.error
    view.prompt_tokens = b.prompt_tokens
    view.completion_tokens = b.completion_tokens
    view.cost_usd = b.cost_usd


def _suggestion_decided(state: SessionState, b: s.SuggestionDecided, t: float) -> None:
    view = _suggestion(state, b.suggestion_id, t)
    for decision in b.decisions:
        view.decisions[decision.index] = decision
    view.commit = b.commit or view.commit
    if view.hunks and not view.undecided:
        view.status = "decided"


def _hunk_decided(state: SessionState, b: s.HunkDecided, t: float) -> None:
    view = _suggestion(state, b.suggestion_id, t)
    try:
        view.decisions[b.hunk_index] = b.as_decision()
    except ValueError:  # an old log with an edit decision but no text: keep what can be kept
        return
    if view.hunks and not view.undecided:
        view.status = "decided"


def _commit_created(state: SessionState, b: s.CommitCreated, t: float) -> None:
    commit = CommitView(sha=b.sha, parent=b.parent, branch=b.branch or state.branch or "main",
                        provenance=b.provenance, message=b.message, suggestion_id=b.suggestion_id, t=t)
    state.commits.append(commit)
    state.head = commit.sha
    state.branch = commit.branch
    if commit.suggestion_id and commit.suggestion_id in state.suggestions:
        state.suggestions[commit.suggestion_id].commit = commit.sha


def _branch_switched(state: SessionState, b: s.BranchSwitched, t: float) -> None:
    state.head = b.sha
    state.branch = b.branch


def _guard_report(state: SessionState, b: s.GuardReport, t: float) -> None:
    if b.commit:
        state.guard_reports[b.commit] = {"findings": list(b.findings), "blocking": b.blocking}


def _guard_override(state: SessionState, b: s.GuardOverride, t: float) -> None:
    state.guard_overrides.append({"commit": b.commit, "choice": b.choice, "rules": list(b.rules), "t": t})


def _run_started(state: SessionState, b: s.RunStarted, t: float) -> None:
    state.runs[b.run_id] = RunView(run_id=b.run_id, commit=b.commit, command=list(b.command), runner=b.runner,
                                   status="running", started_at=t, stop_at_target=b.stop_at_target,
                                   node_id=b.node_id, queued=b.queued, running_since=None if b.queued else t)
    node = state.nodes.get(b.node_id) if b.node_id is not None else None
    if node is None and b.node_id is None and b.started_by == "agent":  # a log from before node_id was written
        node = next((n for n in reversed(state.nodes.values()) if n.commit == b.commit and not n.scored), None)
    if node is not None:
        node.run_ids.append(b.run_id)


def _run_running(state: SessionState, b: s.RunRunning, t: float) -> None:
    run = state.runs.get(b.run_id)
    if run is not None and run.is_live:
        run.queued = False
        run.running_since = b.started_at if b.started_at is not None else t
        run.queue_time_s = b.queue_time_s


def _target_reached(state: SessionState, b: s.TargetReached, t: float) -> None:
    run = state.runs.get(b.run_id)
    if run is not None and run.target is None:
        run.target = {"step": b.step, "val_loss": b.val_loss, "time_to_target_ms": b.time_to_target_ms, "t": t}


def _run_finished(state: SessionState, b: s.RunFinished, t: float) -> None:
    run = state.runs.get(b.run_id)
    if run is not None:
        run.status = b.outcome or "finished"
        run.result = b.to_dict()
        run.queued = False
        if b.queue_time_s is not None:
            run.queue_time_s = b.queue_time_s


def _node_created(state: SessionState, b: s.NodeCreated, t: float) -> None:
    state.nodes[b.node_id] = NodeView(id=b.node_id, parent=b.parent, commit=b.commit, kind=b.kind)


def _node_scored(state: SessionState, b: s.NodeScored, t: float) -> None:
    node = state.nodes.get(b.node_id)
    if node is not None:
        node.scored, node.buggy, node.outcome = True, b.buggy, b.outcome
        if b.run_id and b.run_id not in node.run_ids:
            node.run_ids.append(b.run_id)


def _note(state: SessionState, b: s.Note, t: float) -> None:
    state.notes.append(b.text)


def _error(state: SessionState, b: s.Error, t: float) -> None:
    state.errors.append(b.message)


def _mode_changed(state: SessionState, b: s.ModeChanged, t: float) -> None:
    state.mode = b.mode
    state.agent_drove = state.agent_drove or b.mode == "auto"


def _session_ended(state: SessionState, b: s.SessionEnded, t: float) -> None:
    state.ended = True


def _suggestion(state: SessionState, sid: str, t: float) -> SuggestionView:
    if sid not in state.suggestions:
        state.suggestions[sid] = SuggestionView(id=sid, requested_at=t)
    return state.suggestions[sid]


_HANDLERS: dict[type, Callable[[SessionState, Any, float], None]] = {
    s.SessionStarted: _session_started,
    s.BaselineChosen: _baseline_chosen,
    s.SessionResumed: _session_resumed,
    s.SuggestionRequested: _suggestion_requested,
    s.SuggestionReceived: _suggestion_received,
    s.SuggestionFailed: _suggestion_failed,
    s.SuggestionDecided: _suggestion_decided,
    s.HunkDecided: _hunk_decided,
    s.CommitCreated: _commit_created,
    s.BranchSwitched: _branch_switched,
    s.GuardReport: _guard_report,
    s.GuardOverride: _guard_override,
    s.RunStarted: _run_started,
    s.TargetReached: _target_reached,
    s.RunRunning: _run_running,
    s.RunFinished: _run_finished,
    s.NodeCreated: _node_created,
    s.NodeScored: _node_scored,
    s.Note: _note,
    s.Error: _error,
    s.ModeChanged: _mode_changed,
    s.SessionEnded: _session_ended,
}
