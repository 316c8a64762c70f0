"""The session log's event types: one frozen dataclass per type, the only way events are written or read.

Every writer appends a typed body (`log.append(RunStarted(...))`) and every fold reads `event.body` (projection,
compare, the agent's tree and budget, describe, export, replay, the test builders), so a field added here is seen
everywhere and a field a reader expects but a writer forgot fails in one place.

Encoding: `body.to_dict()` gives the fields (None values and empty extras left out) that follow the envelope
`{"v", "seq", "t", "type"}` on one JSON line. `decode(type, data, v)` builds the body back; fields it does not
know are kept in `extra` (a newer writer), so a re-export loses nothing. A body that lacks a required field, or
holds one of the wrong kind, is a `SchemaError` the reader reports with the line number and keeps as
`Malformed` (folds skip it). `v` is the envelope format; each type migrates older shapes in `_migrate`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from copilot.core.edits.model import Hunk
from copilot.core.runs.metrics import MetricPoint

FORMAT_VERSION = 1


class SchemaError(ValueError):
    """An event whose fields do not have the shape its type needs."""


@dataclass(frozen=True)
class EventBody:
    TYPE: ClassVar[str] = ""
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    # On disk (fsync) before append returns. False for the many small events a run's output can give again:
    # they reach the disk within the log's sync interval or with the next durable event.
    DURABLE: ClassVar[bool] = True
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = _encode(value)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access by field name (extras included), for code that reads optional fields generically."""
        if key in _field_names(type(self)):
            value = getattr(self, key)
            return default if value is None else value
        return self.extra.get(key, default)


def _encode(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------------------
# The one decision type, from the key press to the commit


@dataclass(frozen=True)
class HunkDecision:
    """What the human (or a policy) decided about one hunk; staged in the UI, applied by Session.decide, and
    logged in SuggestionDecided together with the commit it produced."""

    index: int
    action: str  # accept | reject | edit
    edited_replace: str | None = None
    feedback: str | None = None
    decision_time_s: float = 0.0

    def __post_init__(self) -> None:
        if self.action not in ("accept", "reject", "edit"):
            raise ValueError(f"unknown hunk decision {self.action!r}")
        if self.action == "edit" and self.edited_replace is None:
            raise ValueError("an edit decision needs the edited replacement text")

    @property
    def applies(self) -> bool:
        return self.action in ("accept", "edit")

    def applied_to(self, hunk: Hunk) -> Hunk:
        """The hunk as it lands: with the human's replacement when edited."""
        if self.action == "edit" and self.edited_replace is not None:
            return dataclasses.replace(hunk, replace=self.edited_replace)
        return hunk

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "action": self.action,
                                "decision_time_s": round(self.decision_time_s, 3)}
        if self.edited_replace is not None:
            data["edited_replace"] = self.edited_replace
        if self.feedback:
            data["feedback"] = self.feedback
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HunkDecision":
        return cls(index=int(data["index"]), action=str(data["action"]), edited_replace=data.get("edited_replace"),
                   feedback=data.get("feedback"), decision_time_s=float(data.get("decision_time_s") or 0.0))


# ---------------------------------------------------------------------------------------------------------
# Event types


@dataclass(frozen=True)
class SessionStarted(EventBody):
    TYPE = "session_started"
    REQUIRED = ("track", "record")
    session_id: str = ""
    mode: str = "copilot"
    track: str = ""
    record: int = 0
    record_name: str | None = None
    target_val_loss: float = 0.0
    record_time_s: float | None = None
    next_record: int | None = None
    next_record_time_s: float | None = None
    provider: str = ""
    model: str = ""
    provider_label: str | None = None
    offline: bool = False
    hint_levels: list[int] = field(default_factory=list)
    participant: str | None = None
    study: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    gpus: int = 1
    runner: str = "local"
    runner_url: str = "local"
    tool_version: str | None = None
    host: dict[str, Any] | None = None
    workspace: str | None = None
    script: str = "train_gpt.py"
    start_commit: str | None = None
    branch: str = "main"
    edit_format: str | None = None
    baseline: dict[str, Any] | None = None  # the same-machine baseline the session's numbers use


@dataclass(frozen=True)
class BaselineChosen(EventBody):
    """The record times this session's numbers are computed against ("vs record", FSR, projected time):
    measured on this machine (source same_machine, see core/research/baselines.py) or the catalogue's, with
    the reason it stands in. The latest one counts."""

    TYPE = "baseline_chosen"
    REQUIRED = ("source",)
    source: str = "catalogue"  # same_machine | catalogue | file
    record: int = 0
    next_record: int | None = None
    record_time_s: float | None = None
    next_record_time_s: float | None = None
    reason: str | None = None
    record_std_s: float | None = None
    next_record_std_s: float | None = None
    seeds: int = 0
    noise_s: float | None = None
    fingerprint_key: str | None = None
    fingerprint: dict[str, Any] | None = None
    conditions: dict[str, Any] | None = None
    measured_at: float | None = None
    measurement_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SessionResumed(EventBody):
    TYPE = "session_resumed"
    provider: str | None = None
    model: str | None = None
    provider_label: str | None = None
    offline: bool | None = None
    problems: list[str] = field(default_factory=list)
    head: str | None = None


@dataclass(frozen=True)
class SuggestionRequested(EventBody):
    TYPE = "suggestion_requested"
    REQUIRED = ("suggestion_id",)
    suggestion_id: str = ""
    instruction: str | None = None
    edit_format: str | None = None


@dataclass(frozen=True)
class SuggestionReceived(EventBody):
    TYPE = "suggestion_received"
    REQUIRED = ("suggestion_id",)
    suggestion_id: str = ""
    rationale: str = ""
    hunks: list[Hunk] = field(default_factory=list)
    raw_text: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    format: str | None = None
    finish_reason: str | None = None
    truncated: bool = False
    dropped_blocks: int = 0
    guard: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float | None = None
    retries: int = 0
    retry_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SuggestionFailed(EventBody):
    TYPE = "suggestion_failed"
    REQUIRED = ("suggestion_id",)
    suggestion_id: str = ""
    error: str = ""
    error_kind: str | None = None
    latency_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True)
class SuggestionDecided(EventBody):
    """Every hunk's decision, written once the commit they produced exists (commit None: nothing accepted)."""

    TYPE = "suggestion_decided"
    REQUIRED = ("suggestion_id",)
    suggestion_id: str = ""
    decisions: list[HunkDecision] = field(default_factory=list)
    commit: str | None = None


@dataclass(frozen=True)
class HunkDecided(EventBody):
    """Logs written before 2026-12 record each decision on its own (read, never written)."""

    TYPE = "hunk_decided"
    REQUIRED = ("suggestion_id", "hunk_index", "decision")
    suggestion_id: str = ""
    hunk_index: int = 0
    decision: str = ""
    edited_replace: str | None = None
    feedback: str | None = None
    decision_time_s: float | None = None

    def as_decision(self) -> HunkDecision:
        return HunkDecision(self.hunk_index, self.decision, edited_replace=self.edited_replace,
                            feedback=self.feedback, decision_time_s=self.decision_time_s or 0.0)


@dataclass(frozen=True)
class FeedbackGiven(EventBody):
    """Legacy: feedback now travels in SuggestionDecided's decisions."""

    TYPE = "feedback_given"
    suggestion_id: str = ""
    hunk_index: int | None = None
    text: str = ""


@dataclass(frozen=True)
class CommitCreated(EventBody):
    TYPE = "commit_created"
    REQUIRED = ("sha",)
    sha: str = ""
    parent: str | None = None
    branch: str | None = None
    provenance: str = "ai"  # ai | human | ai+human-edit | revert | start
    suggestion_id: str | None = None
    hunks_accepted: list[int] = field(default_factory=list)
    message: str = ""


@dataclass(frozen=True)
class CommitFailed(EventBody):
    TYPE = "commit_failed"
    suggestion_id: str | None = None
    error: str = ""


@dataclass(frozen=True)
class BranchSwitched(EventBody):
    TYPE = "branch_switched"
    REQUIRED = ("sha",)
    sha: str = ""
    branch: str = ""
    reason: str | None = None


@dataclass(frozen=True)
class ExternalEditDetected(EventBody):
    TYPE = "external_edit_detected"
    diff: str = ""
    head: str | None = None


@dataclass(frozen=True)
class GuardReport(EventBody):
    TYPE = "guard_report"
    commit: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    blocking: bool = False


@dataclass(frozen=True)
class GuardOverride(EventBody):
    """The human's answer to a blocked run: run anyway, or go back."""

    TYPE = "guard_override"
    REQUIRED = ("commit", "choice")
    commit: str = ""
    choice: str = ""  # run | back
    rules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunStarted(EventBody):
    TYPE = "run_started"
    REQUIRED = ("run_id",)
    run_id: str = ""
    commit: str = ""
    command: list[str] = field(default_factory=list)
    runner: str = "local"
    gpus: int | None = None
    run_dir: str | None = None
    gpu_info: list[dict[str, Any]] = field(default_factory=list)
    stop_at_target: bool = False
    started_by: str | None = None  # app | agent | run | baseline
    node_id: int | None = None  # the agent's search node this run scores
    workdir: str | None = None  # the commit's own copy the run trains in (None: the session's working copy)
    queued: bool = False  # the runner has a scheduler queue (SLURM): no run time until run_running


@dataclass(frozen=True)
class RunAttached(EventBody):
    TYPE = "run_attached"
    REQUIRED = ("run_id",)
    run_id: str = ""


@dataclass(frozen=True)
class RunRunning(EventBody):
    """A queued run left the scheduler's queue: its run time (and accelerator time) starts at `started_at`."""

    TYPE = "run_running"
    REQUIRED = ("run_id",)
    run_id: str = ""
    started_at: float | None = None  # unix s, the job's real start
    queue_time_s: float | None = None


@dataclass(frozen=True)
class Metric(EventBody):
    TYPE = "metric"
    DURABLE = False  # dozens a second, each also in the run's output.log
    REQUIRED = ("run_id", "step")
    run_id: str = ""
    step: int = 0
    total_steps: int | None = None
    val_loss: float | None = None
    train_loss: float | None = None
    train_time_ms: float | None = None
    step_avg_ms: float | None = None

    @property
    def point(self) -> MetricPoint:
        return MetricPoint(self.step, self.total_steps, self.val_loss, self.train_loss, self.train_time_ms,
                           self.step_avg_ms)

    @classmethod
    def of(cls, run_id: str, point: MetricPoint) -> "Metric":
        return cls(run_id=run_id, step=point.step, total_steps=point.total_steps, val_loss=point.val_loss,
                   train_loss=point.train_loss, train_time_ms=point.train_time_ms, step_avg_ms=point.step_avg_ms)

    @staticmethod
    def point_from(data: Mapping[str, Any]) -> MetricPoint:
        """The fast path of folds over many metric events: a MetricPoint straight from the event's fields."""
        return MetricPoint(int(data["step"]), data.get("total_steps"), data.get("val_loss"), data.get("train_loss"),
                           data.get("train_time_ms"), data.get("step_avg_ms"))


@dataclass(frozen=True)
class TargetReached(EventBody):
    """The first validation line at or below the target, seen live (the run may go on)."""

    TYPE = "target_reached"
    REQUIRED = ("run_id",)
    run_id: str = ""
    step: int | None = None
    val_loss: float | None = None
    time_to_target_ms: float | None = None


@dataclass(frozen=True)
class RunFinished(EventBody):
    TYPE = "run_finished"
    REQUIRED = ("run_id", "outcome")
    run_id: str = ""
    outcome: str = ""
    reached_target: bool = False
    time_to_target_ms: float | None = None
    final_val_loss: float | None = None
    best_val_loss: float | None = None
    train_time_ms: float | None = None
    wall_time_s: float | None = None
    exit_code: int | None = None
    steps: int | None = None
    error_tail: list[str] = field(default_factory=list)
    error_summary: str | None = None
    peak_memory_mib: int | None = None
    timer_gap: float | None = None
    timer_suspect: bool = False
    accelerator_seconds: float | None = None
    queue_time_s: float | None = None
    stopped_at_target: bool = False
    recorded_by: str | None = None  # which driver recorded the end (re-attach after a kill)


@dataclass(frozen=True)
class NodeCreated(EventBody):
    TYPE = "node_created"
    REQUIRED = ("node_id",)
    node_id: int = 0
    parent: int | None = None
    commit: str | None = None
    base: str | None = None
    branch: str = ""
    kind: str = "improve"
    debug_depth: int = 0
    step: int = 0
    step_size: int = 1
    suggestion_id: str | None = None
    description: str = ""


@dataclass(frozen=True)
class NodeScored(EventBody):
    TYPE = "node_scored"
    REQUIRED = ("node_id",)
    node_id: int = 0
    buggy: bool = False
    outcome: str | None = None
    reason: str | None = None
    time_to_target_ms: float | None = None
    final_val_loss: float | None = None
    reached_target: bool = False
    run_id: str | None = None
    wall_time_s: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class ModeChanged(EventBody):
    TYPE = "mode_changed"
    REQUIRED = ("mode",)
    mode: str = "copilot"
    previous: str | None = None
    by: str | None = None


@dataclass(frozen=True)
class BudgetExhausted(EventBody):
    TYPE = "budget_exhausted"
    reason: str = ""
    budget: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None


@dataclass(frozen=True)
class Note(EventBody):
    TYPE = "note"
    text: str = ""
    kind: str | None = None
    run_id: str | None = None
    agent: dict[str, Any] | None = None  # kind "agent_config": the agent's policy, budget and seed


@dataclass(frozen=True)
class Error(EventBody):
    TYPE = "error"
    message: str = ""
    where: str | None = None
    suggestion_id: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class SessionEnded(EventBody):
    TYPE = "session_ended"
    reason: str = "user"
    runs_left_running: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Unknown(EventBody):
    """A type this version does not know (a newer writer): kept, reported, skipped by folds."""

    TYPE = "unknown"
    type_name: str = ""


@dataclass(frozen=True)
class Malformed(EventBody):
    """An event of a known type whose fields have the wrong shape: kept, reported, skipped by folds."""

    TYPE = "malformed"
    type_name: str = ""
    problem: str = ""


BODY_TYPES: dict[str, type[EventBody]] = {
    cls.TYPE: cls
    for cls in (
        SessionStarted, BaselineChosen, SessionResumed, SuggestionRequested, SuggestionReceived, SuggestionFailed,
        SuggestionDecided,
        HunkDecided, FeedbackGiven, CommitCreated, CommitFailed, BranchSwitched, ExternalEditDetected, GuardReport,
        GuardOverride, RunStarted, RunAttached, RunRunning, Metric, TargetReached, RunFinished, NodeCreated,
        NodeScored, ModeChanged, BudgetExhausted, Note, Error, SessionEnded,
    )
}
EVENT_TYPES: frozenset[str] = frozenset(BODY_TYPES)


# ---------------------------------------------------------------------------------------------------------
# Decoding


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    kind: type | None  # the plain type to check (int, float, str, bool, list, dict), None = anything
    optional: bool
    item: type | None  # for lists of Hunk / HunkDecision


_SPECS: dict[type, tuple[_FieldSpec, ...]] = {}


def _fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.name != "extra")


def _field_names(cls: type) -> frozenset[str]:
    return frozenset(spec.name for spec in _specs(cls))


def _specs(cls: type) -> tuple[_FieldSpec, ...]:
    if cls not in _SPECS:
        hints = typing.get_type_hints(cls)
        specs = []
        for f in _fields(cls):
            hint = hints[f.name]
            args = typing.get_args(hint)
            optional = type(None) in args
            base = next((a for a in args if a is not type(None)), hint) if args and optional else hint
            origin = typing.get_origin(base) or base
            item = None
            if origin is list:
                inner = typing.get_args(base)
                item = inner[0] if inner and inner[0] in (Hunk, HunkDecision) else None
            kind = origin if origin in (int, float, str, bool, list, dict) else None
            specs.append(_FieldSpec(f.name, kind, optional, item))
        _SPECS[cls] = tuple(specs)
    return _SPECS[cls]


def _check(spec: _FieldSpec, value: Any, type_name: str) -> Any:
    if value is None:
        return None
    kind = spec.kind
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind in (str, bool, dict) and isinstance(value, kind):
        return value
    if kind is list and isinstance(value, (list, tuple)):
        if spec.item is not None:
            try:
                return [v if isinstance(v, spec.item) else spec.item.from_dict(v) for v in value]  # type: ignore[attr-defined]
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise SchemaError(f"{type_name}.{spec.name} holds an entry of the wrong shape ({exc})") from None
        return list(value)
    if kind is None:
        return value
    raise SchemaError(f"{type_name}.{spec.name} should be {kind.__name__}, got {type(value).__name__} {value!r:.40}")


def decode(type_name: str, data: Mapping[str, Any], version: int = FORMAT_VERSION) -> EventBody:
    """The typed body of an event; Unknown for a type this version does not know. Raises SchemaError."""
    cls = BODY_TYPES.get(type_name)
    if cls is None:
        return Unknown(type_name=type_name, extra=dict(data))
    data = _migrate(type_name, data, version)
    missing = [name for name in cls.REQUIRED if data.get(name) is None]
    if missing:
        raise SchemaError(f"{type_name} event without {', '.join(missing)}")
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    names = set()
    for spec in _specs(cls):
        names.add(spec.name)
        if spec.name in data:
            value = _check(spec, data[spec.name], type_name)
            if value is not None or spec.optional:
                kwargs[spec.name] = value
    for key, value in data.items():
        if key not in names:
            extra[key] = value
    return cls(**kwargs, extra=extra)


def _migrate(type_name: str, data: Mapping[str, Any], version: int) -> Mapping[str, Any]:
    """Older shapes of a type, brought up to date. (Version 1 is the only envelope version so far.)"""
    del type_name, version
    return data


def body_of(event: Any) -> EventBody:
    """The typed body of an event object (Event from events.py), decoding once and caching."""
    return event.body
