"""Sessions as research data: one summary row per session, FSR, group statistics, significance, exports.

Everything here is derived from `sessions/<id>/events.jsonl` alone (read with the tolerant reader), so a
corrupt or half-written log still yields a row; what could not be read is listed in the row's `problems`.

Choices made here (FACTS.md §2.2, §1.8):
- FSR_i = (t_i − t′)/(t_i − t_{i+1}) with t_i the starting record's time, t_{i+1} the next record's time and
  t′ the best time to target the session reached. It is not clipped: a run slower than the start record that
  still reaches the target gives FSR < 0, one faster than the next record gives FSR > 1 (the paper shows ~1.4).
- A session that never reached the target has no t′. The paper's formula is undefined there; its benchmark
  mean is over all tasks, so a failed task must count as something. The per-session value stays `None`
  (`fsr(..., fail_value=None)`) so a table shows the failure honestly; `group_summaries(fail_value=0.0)` counts
  a failure as 0 by default ("no speedup recovered", what the unchanged start script would score). Pass
  `fail_value=None` to average only the sessions that reached the target.
- IQM is the interquartile mean as rliable computes it, i.e. `scipy.stats.trim_mean(x, 0.25)`: sort, drop
  floor(0.25·n) values at each end, average the rest (no fractional weighting).
- Confidence intervals are percentile bootstraps over sessions (seeded numpy Generator, 10,000 resamples).
- Significance follows upstream's rule: one-sided one-sample t-test of the runs' final val losses, H1 "mean <
  target", passing at p < 0.01. A commit with fewer than 2 finished runs cannot pass (no variance estimate).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import sys
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from copilot.core.errors import ConfigError, SpeedcopilotError
from copilot.core.research.baselines import CATALOGUE, FILE, LABELS, SAME_MACHINE, noise_verdict, speedup_text
from copilot.core.session import schema as s
from copilot.core.session.events import EVENTS_FILE, Event, read_events

SIGNIFICANCE_ALPHA = 0.01
DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0


# --------------------------------------------------------------------------------------------------
# FSR and baselines
# --------------------------------------------------------------------------------------------------
def fsr(
    record_time_s: float | None,
    next_record_time_s: float | None,
    achieved_time_s: float | None,
    fail_value: float | None = None,
) -> float | None:
    """Fraction of speedup recovered, Paper Eq. 1: (t_i − t′)/(t_i − t_{i+1}).

    Returns `fail_value` when nothing reached the target (achieved_time_s is None), and None when the task
    has no defined speedup (a time is unknown, or the next record is not faster than the start record).
    """
    if record_time_s is None or next_record_time_s is None:
        return None
    gain = record_time_s - next_record_time_s
    if not math.isfinite(gain) or gain <= 0:
        return None
    if achieved_time_s is None or not math.isfinite(achieved_time_s):
        return fail_value
    return (record_time_s - achieved_time_s) / gain


@dataclass(frozen=True)
class Baselines:
    """Record times re-measured on the machine the sessions ran on; they override the catalogue times.

    `by_track[track][record]` wins over `any_track[record]` (a mapping given without a track).
    """

    by_track: dict[str, dict[int, float]] = field(default_factory=dict)
    any_track: dict[int, float] = field(default_factory=dict)
    source: str | None = None

    def time(self, track: str | None, record: int | None) -> float | None:
        if record is None:
            return None
        if track is not None and record in self.by_track.get(track, {}):
            return self.by_track[track][record]
        return self.any_track.get(record)


def load_baselines(path: Path) -> Baselines:
    """Read a TOML or JSON baselines file.

    Accepted shapes (seconds):  `3 = 41.2` (any track), `[micro] 3 = 41.2`, or a table per record with
    `time_s` (`[micro.3] time_s = 41.2`). JSON uses the same nesting with string keys.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read baselines file {path}: {exc.strerror}; check the path") from None
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"baselines file {path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"baselines file {path} must map record numbers (or tracks) to times in seconds")
    by_track: dict[str, dict[int, float]] = {}
    any_track: dict[int, float] = {}
    for key, value in raw.items():
        record = _as_record_number(key)
        if record is not None:
            any_track[record] = _baseline_seconds(path, key, value)
        elif isinstance(value, dict):
            by_track[str(key)] = {
                _require_record_number(path, f"{key}.{inner}", inner): _baseline_seconds(path, f"{key}.{inner}", v)
                for inner, v in value.items()
            }
        else:
            raise ConfigError(f"baselines file {path}: key {key!r} is neither a record number nor a track table")
    return Baselines(by_track=by_track, any_track=any_track, source=str(path))


def _as_record_number(key: Any) -> int | None:
    try:
        return int(str(key))
    except ValueError:
        return None


def _require_record_number(path: Path, where: str, key: Any) -> int:
    number = _as_record_number(key)
    if number is None:
        raise ConfigError(f"baselines file {path}: {where!r} should be a record number")
    return number


def _baseline_seconds(path: Path, where: str, value: Any) -> float:
    if isinstance(value, dict):
        value = value.get("time_s")
    seconds = _num(value)
    if seconds is None or seconds <= 0:
        raise ConfigError(f"baselines file {path}: {where!r} needs a positive time in seconds, got {value!r}")
    return seconds


# --------------------------------------------------------------------------------------------------
# Significance (Student's t, implemented here: no scipy)
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Significance:
    n: int
    mean: float | None
    std: float | None  # sample standard deviation (ddof=1)
    t: float | None
    p_one_sided: float | None  # P(T <= t) under H0 "mean = target"; small when the mean is below target
    passes: bool


def significance(val_losses: Sequence[float], target: float, alpha: float = SIGNIFICANCE_ALPHA) -> Significance:
    """One-sided one-sample t-test of H1 "mean < target" (upstream: ttest_1samp(..., alternative='less'))."""
    values = [float(v) for v in val_losses if _num(v) is not None]
    n = len(values)
    if n == 0:
        return Significance(0, None, None, None, None, False)
    mean = statistics.fmean(values)
    if n < 2:
        return Significance(n, mean, None, None, None, False)
    std = statistics.stdev(values)
    if std == 0.0:
        # Degenerate: no spread. The limit of the test is certainty either way (or no evidence at equality).
        t = -math.inf if mean < target else (math.inf if mean > target else 0.0)
        p = 0.0 if mean < target else (1.0 if mean > target else 0.5)
    else:
        t = (mean - target) / (std / math.sqrt(n))
        p = student_t_cdf(t, n - 1)
    return Significance(n, mean, std, t, p, p < alpha)


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df degrees of freedom, via the regularized incomplete beta function."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if math.isinf(t):
        return 0.0 if t < 0 else 1.0
    x = df / (df + t * t)
    tail = 0.5 * regularized_incomplete_beta(x, df / 2.0, 0.5)
    return tail if t < 0 else 1.0 - tail


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction (modified Lentz), using the symmetry I_x(a,b) = 1 − I_{1−x}(b,a)
    where the fraction converges slowly."""
    if not 0.0 <= x <= 1.0:
        raise ValueError("x must lie in [0, 1]")
    if x == 0.0 or x == 1.0:
        return x
    # x^a (1−x)^b / B(a, b), the same front factor for both forms
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(x, a, b) / a
    return 1.0 - front * _beta_continued_fraction(1.0 - x, b, a) / b


def _beta_continued_fraction(x: float, a: float, b: float, max_terms: int = 500, eps: float = 1e-15) -> float:
    tiny = 1e-300
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, max_terms + 1):
        # even step: coefficient m(b−m)x / ((a+2m−1)(a+2m))
        coef = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 + coef * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + coef / c
        c = c if abs(c) > tiny else tiny
        result *= d * c
        # odd step: coefficient −(a+m)(a+b+m)x / ((a+2m)(a+2m+1))
        coef = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + coef * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + coef / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        result *= delta
        if abs(delta - 1.0) < eps:
            break
    return result


# --------------------------------------------------------------------------------------------------
# Runs grouped by commit
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    run_id: str
    commit: str | None
    outcome: str | None
    reached_target: bool
    time_to_target_s: float | None
    final_val_loss: float | None
    best_val_loss: float | None
    wall_time_s: float | None
    accelerator_seconds: float | None
    finished_at: float | None  # event time of run_finished


@dataclass(frozen=True)
class CommitRuns:
    """All finished runs of one commit: a mean and a test, so a lucky single run is not called a record."""

    commit: str | None
    runs: list[RunResult]
    mean_val_loss: float | None
    mean_time_to_target_s: float | None  # over the runs that reached the target
    significance: Significance
    is_record: bool  # passes the test and at least one run reached the target


def collect_runs(events: Iterable[Event]) -> list[RunResult]:
    """One RunResult per run_finished, joined with its run_started (commit) and its last val metric."""
    commits: dict[str, str | None] = {}
    last_val: dict[str, float] = {}
    results: list[RunResult] = []
    for event in events:
        if event.type == "metric":
            val = _num(event.data.get("val_loss"))
            run_id = event.data.get("run_id")
            if val is not None and isinstance(run_id, str):
                last_val[run_id] = val
            continue
        body = event.body
        if isinstance(body, s.RunStarted):
            commits[body.run_id] = body.commit or None
        elif isinstance(body, s.RunFinished):
            ttt_ms = _num(body.time_to_target_ms)
            reached = body.reached_target and ttt_ms is not None
            final = _num(body.final_val_loss)
            results.append(
                RunResult(
                    run_id=body.run_id,
                    commit=commits.get(body.run_id, _str(body.get("commit"))),
                    outcome=body.outcome,
                    reached_target=reached,
                    time_to_target_s=ttt_ms / 1000.0 if reached and ttt_ms is not None else None,
                    final_val_loss=final if final is not None else last_val.get(body.run_id),
                    best_val_loss=_num(body.best_val_loss),
                    wall_time_s=_num(body.wall_time_s),
                    accelerator_seconds=_num(body.accelerator_seconds),
                    finished_at=event.t,
                )
            )
    return results


def runs_by_commit(
    events: Iterable[Event], target: float | None = None, alpha: float = SIGNIFICANCE_ALPHA
) -> list[CommitRuns]:
    """Finished runs grouped by commit (first-seen order), each with a mean val loss and the t-test.

    `target` defaults to the session's target_val_loss from session_started.
    """
    events = list(events)
    if target is None:
        started = _started(events)
        target = _num(started.target_val_loss) if started else None
    groups: dict[str | None, list[RunResult]] = {}
    for run in collect_runs(events):
        groups.setdefault(run.commit, []).append(run)
    out: list[CommitRuns] = []
    for commit, runs in groups.items():
        losses = [r.final_val_loss for r in runs if r.final_val_loss is not None]
        times = [r.time_to_target_s for r in runs if r.time_to_target_s is not None]
        if target is None:
            sig = Significance(len(losses), statistics.fmean(losses) if losses else None, None, None, None, False)
        else:
            sig = significance(losses, target, alpha)
        out.append(
            CommitRuns(
                commit=commit,
                runs=runs,
                mean_val_loss=statistics.fmean(losses) if losses else None,
                mean_time_to_target_s=statistics.fmean(times) if times else None,
                significance=sig,
                is_record=sig.passes and bool(times),
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# One row per session
# --------------------------------------------------------------------------------------------------
@dataclass
class SessionSummary:
    session_id: str
    mode: str | None = None
    track: str | None = None
    record: int | None = None
    next_record: int | None = None
    task: str | None = None
    provider: str | None = None
    model: str | None = None
    hints: str = "0"  # hint levels joined by "+", "0" for none (the paper's regimes: 0, 1, 2, 3, 1+2, 1+2+3)
    participant: str | None = None
    target_val_loss: float | None = None
    record_time_s: float | None = None
    next_record_time_s: float | None = None
    best_time_to_target_s: float | None = None
    fsr: float | None = None
    significant_commits: int = 0
    best_significant_time_s: float | None = None  # best mean time of a commit that passes the t-test
    suggestions: int = 0
    suggestions_failed: int = 0
    nodes: int = 0
    hunks_accepted: int = 0
    hunks_edited: int = 0
    hunks_rejected: int = 0
    median_decision_time_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    accelerator_seconds: float = 0.0
    wall_time_s: float = 0.0
    runs: int = 0
    runs_finished: int = 0
    runs_reached: int = 0
    ended_reason: str | None = None
    started_at: float | None = None
    tool_version: str | None = None
    study: str | None = None
    # Added 2026-12, after the older columns so that CSV readers by position keep working
    folder: str = ""  # the session folder's name (what `sessions show` and `compare ID` take)
    baseline_source: str = "catalogue"  # same_machine | catalogue | file: where t_i and t_{i+1} come from
    baseline_reason: str | None = None  # why the catalogue stands in
    baseline_seeds: int = 0
    noise_s: float | None = None  # pooled seed-to-seed std of the baseline's times (same machine only)
    speedup: str = "—"  # best time against t_i: "1.7× faster" / "1.3× slower"
    fsr_noise: float | None = None  # half-width of the 2σ band noise alone gives FSR
    within_noise: bool | None = None  # |t_i − t'| ≤ 2σ: not told apart from the starting record
    guard_blocked: int = 0  # commits the integrity guard blocked
    guard_overrides: int = 0  # of those, run anyway by the human's (or the config's) choice
    guard_noted: int = 0  # commits with notes only
    best_overridden: bool = False  # the best time came from a commit the guard blocked: it does not count as fair
    # (seconds since the first event, best time to target so far) at every improvement: for plots
    best_time_curve: list[tuple[float, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Columns of the CSV (the curve is JSON-only; problems become a count).
CSV_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(SessionSummary) if f.name not in ("best_time_curve", "problems")
) + ("problems",)


def summarize_session(
    session_dir: Path, baselines: Baselines | None = None, fail_value: float | None = None
) -> SessionSummary:
    """Summarise one session folder. Never raises on a bad log: what was unreadable lands in `problems`."""
    session_dir = Path(session_dir)
    result = read_events(session_dir / EVENTS_FILE)
    row = SessionSummary(session_id=session_dir.name, folder=session_dir.name, problems=list(result.problems))
    try:
        _fill_summary(row, result.events, baselines, fail_value)
    except Exception as exc:  # noqa: BLE001 — a row with a problem beats a crashed comparison of 100 sessions
        row.problems.append(f"summary incomplete: {type(exc).__name__}: {exc}")
    return row


def summarize_sessions(
    session_dirs: Iterable[Path], baselines: Baselines | None = None, fail_value: float | None = None
) -> list[SessionSummary]:
    return [summarize_session(Path(d), baselines, fail_value) for d in session_dirs]


def find_session_dirs(root: Path) -> list[Path]:
    """Session folders under root (any folder holding an events.jsonl), sorted by name."""
    root = Path(root)
    if (root / EVENTS_FILE).exists():
        return [root]
    return sorted(p.parent for p in root.glob(f"*/{EVENTS_FILE}"))


def _fill_summary(
    row: SessionSummary, events: list[Event], baselines: Baselines | None, fail_value: float | None
) -> None:
    if events:
        row.started_at = events[0].t
        row.wall_time_s = max(0.0, max(e.t for e in events) - min(e.t for e in events))
    started = _started(events)
    if started is None:
        row.problems.append("no session_started event: mode, task and FSR unknown")
    else:
        _fill_from_started(row, started)

    decision_times: list[float] = []
    run_ids: set[str] = set()
    chosen: s.BaselineChosen | None = None
    guard_reports: dict[str, s.GuardReport] = {}
    overridden: set[str] = set()
    for event in events:
        if event.type == "metric":
            continue
        body = event.body
        if isinstance(body, (s.SuggestionReceived, s.SuggestionFailed)):
            if isinstance(body, s.SuggestionReceived):
                row.suggestions += 1
            else:
                row.suggestions_failed += 1
            row.prompt_tokens += body.prompt_tokens
            row.completion_tokens += body.completion_tokens
            row.cost_usd += body.cost_usd or 0.0
        elif isinstance(body, (s.SuggestionDecided, s.HunkDecided)):
            decisions = body.decisions if isinstance(body, s.SuggestionDecided) else [_legacy(body)]
            for decision in decisions:
                if decision is None:
                    continue
                if decision.action == "accept":
                    row.hunks_accepted += 1
                elif decision.action == "edit":
                    row.hunks_edited += 1
                elif decision.action == "reject":
                    row.hunks_rejected += 1
                decision_times.append(decision.decision_time_s)
        elif isinstance(body, s.NodeCreated):
            row.nodes += 1
        elif isinstance(body, s.RunStarted):
            run_ids.add(body.run_id)
        elif isinstance(body, s.SessionEnded):
            row.ended_reason = body.reason
        elif isinstance(body, s.BaselineChosen):
            chosen = body
        elif isinstance(body, s.GuardReport) and body.commit:
            guard_reports[body.commit] = body
        elif isinstance(body, s.GuardOverride) and body.choice == "run":
            overridden.add(body.commit)
    row.runs = len(run_ids)
    row.guard_blocked = sum(1 for r in guard_reports.values() if r.blocking)
    row.guard_noted = sum(1 for r in guard_reports.values() if r.findings and not r.blocking)
    row.guard_overrides = len(overridden)
    if decision_times:
        row.median_decision_time_s = statistics.median(decision_times)

    runs = collect_runs(events)
    row.runs_finished = len(runs)
    row.accelerator_seconds = sum(r.accelerator_seconds or 0.0 for r in runs)
    reached = [r for r in runs if r.time_to_target_s is not None]
    row.runs_reached = len(reached)
    if reached:
        best = min(reached, key=lambda r: r.time_to_target_s)  # type: ignore[arg-type,return-value]
        row.best_time_to_target_s = best.time_to_target_s
        row.best_overridden = best.commit in overridden
    row.best_time_curve = _best_time_curve(reached, row.started_at)
    _apply_baseline(row, started, chosen, baselines)
    row.fsr = fsr(row.record_time_s, row.next_record_time_s, row.best_time_to_target_s, fail_value)
    row.speedup = speedup_text(row.record_time_s, row.best_time_to_target_s)
    verdict = noise_verdict(row.record_time_s, row.next_record_time_s, row.best_time_to_target_s, row.noise_s)
    row.within_noise, row.fsr_noise = verdict.within_noise, verdict.fsr_half_width

    commits = runs_by_commit(events, target=row.target_val_loss)
    records = [c for c in commits if c.is_record]
    row.significant_commits = len(records)
    if records:
        row.best_significant_time_s = min(c.mean_time_to_target_s for c in records)  # type: ignore[type-var]


def _started(events: Iterable[Event]) -> s.SessionStarted | None:
    for event in events:
        if event.type == "session_started" and isinstance(event.body, s.SessionStarted):
            return event.body
    return None


def _legacy(body: s.HunkDecided) -> s.HunkDecision | None:
    try:
        return body.as_decision()
    except ValueError:
        return None


def _fill_from_started(row: SessionSummary, started: s.SessionStarted) -> None:
    row.session_id = started.session_id or row.session_id
    row.mode = started.mode
    row.track = started.track
    row.record = started.record
    row.next_record = started.next_record
    if row.next_record is None and row.record is not None:
        row.next_record = row.record + 1
    row.task = f"{row.track or '?'} {row.record if row.record is not None else '?'}→{row.next_record or '?'}"
    row.provider = started.provider or None
    row.model = started.model or None
    clean = sorted({int(v) for v in started.hint_levels if _int(v) is not None and int(v) > 0})
    row.hints = "+".join(str(v) for v in clean) if clean else "0"
    row.participant = started.participant
    row.target_val_loss = started.target_val_loss
    row.tool_version = started.tool_version
    if isinstance(started.study, dict):
        row.study = _str(started.study.get("name"))
    row.record_time_s = started.record_time_s
    row.next_record_time_s = started.next_record_time_s


def _apply_baseline(row: SessionSummary, started: s.SessionStarted | None, chosen: s.BaselineChosen | None,
                    baselines: Baselines | None) -> None:
    """t_i and t_{i+1}: a --baselines file given for this comparison wins (it is the user's explicit choice),
    then the same-machine baseline the session recorded, then the catalogue's times (labelled as such)."""
    if baselines is not None:
        first, second = baselines.time(row.track, row.record), baselines.time(row.track, row.next_record)
        if first is not None and second is not None:
            row.record_time_s, row.next_record_time_s = first, second
            row.baseline_source, row.baseline_reason = FILE, f"times from {baselines.source or 'a baselines file'}"
            return
    legacy = started.baseline if started is not None and isinstance(started.baseline, dict) else None
    if chosen is None and legacy and legacy.get("record_time_s") is not None:
        chosen = s.BaselineChosen(source=SAME_MACHINE, record_time_s=_num(legacy.get("record_time_s")),
                                  next_record_time_s=_num(legacy.get("next_record_time_s")))
    if chosen is not None and chosen.source == SAME_MACHINE and chosen.record_time_s is not None \
            and chosen.next_record_time_s is not None:
        row.record_time_s, row.next_record_time_s = chosen.record_time_s, chosen.next_record_time_s
        row.baseline_source, row.baseline_reason = SAME_MACHINE, None
        row.baseline_seeds, row.noise_s = chosen.seeds, chosen.noise_s
        return
    row.baseline_source = CATALOGUE
    if chosen is not None and chosen.reason:
        row.baseline_reason = chosen.reason
    elif baselines is not None:
        row.baseline_reason = f"{baselines.source or 'the baselines file'} has no time for both records"
    else:
        row.baseline_reason = "the session recorded no same-machine baseline"


def _best_time_curve(reached: list[RunResult], start: float | None) -> list[tuple[float, float]]:
    curve: list[tuple[float, float]] = []
    best = math.inf
    for run in sorted(reached, key=lambda r: r.finished_at or 0.0):
        assert run.time_to_target_s is not None
        if run.time_to_target_s < best:
            best = run.time_to_target_s
            elapsed = (run.finished_at or 0.0) - (start or 0.0)
            curve.append((max(0.0, elapsed), best))
    return curve


# --------------------------------------------------------------------------------------------------
# Explaining a number
# --------------------------------------------------------------------------------------------------
FORMULA = "FSR = (t_i − t′) / (t_i − t_{i+1})   (arXiv 2506.22419, Eq. 1)"


def group_label(key: dict[str, Any]) -> str:
    """A group's values, without one that another repeats ("micro" beside the task "micro 2→3")."""
    values = [str(v) for v in key.values()]
    return " ".join(v for i, v in enumerate(values)
                    if not any(v != other and v in other.split() for other in values[i + 1:] + values[:i]))


def explain_session(row: SessionSummary) -> list[str]:
    """The FSR of one session with every input: which record times, from where, the session's best time, the
    arithmetic, the noise band and the speed-up in words."""
    name = row.folder or row.session_id
    lines = [f"{name} · {row.mode or '?'} · {row.task or '?'} · target ≤ {_g(row.target_val_loss)}",
             f"  {FORMULA}"]
    source = LABELS.get(row.baseline_source, row.baseline_source)
    lines.append(f"  baseline: {source}" + (f" ({row.baseline_reason})" if row.baseline_reason else "")
                 + (f", {row.baseline_seeds} seed(s) per record" if row.baseline_source == SAME_MACHINE else ""))
    lines.append(f"  t_i     = {_s(row.record_time_s)}  record {row.record} ({source})")
    lines.append(f"  t_{{i+1}} = {_s(row.next_record_time_s)}  record {row.next_record} ({source})")
    lines.append(f"  t′      = {_s(row.best_time_to_target_s)}  best time to target "
                 f"({row.runs_reached} of {row.runs_finished} run(s) reached it)")
    t_i, t_next, t_best = row.record_time_s, row.next_record_time_s, row.best_time_to_target_s
    if t_i is None or t_next is None:
        lines.append("  FSR undefined: a record time is unknown")
    elif t_i - t_next <= 0:
        lines.append(f"  FSR undefined: record {row.next_record} is not faster than record {row.record} here "
                     f"(t_i − t_{{i+1}} = {t_i - t_next:.2f} s)")
    elif t_best is None:
        lines.append("  FSR: no run reached the target (the session's FSR is empty; group statistics count it "
                     "as --fail-value)")
    else:
        lines.append(f"  FSR = ({t_i:.2f} − {t_best:.2f}) / ({t_i:.2f} − {t_next:.2f}) = {t_i - t_best:.2f} / "
                     f"{t_i - t_next:.2f} = {row.fsr:.3f}")
        lines.append(f"  speed: {row.speedup} than record {row.record} ({source})")
    if row.noise_s is not None:
        lines.append(f"  noise: σ = {row.noise_s:.2f} s seed to seed (pooled over both records)")
        if row.within_noise is not None and t_i is not None and t_best is not None:
            verdict = "within noise: not told apart from record " + str(row.record) if row.within_noise else \
                "beyond noise"
            lines.append(f"         |t_i − t′| = {abs(t_i - t_best):.2f} s vs 2σ = {2 * row.noise_s:.2f} s"
                         f" → {verdict}"
                         + (f"; FSR ± {row.fsr_noise:.2f}" if row.fsr_noise is not None else ""))
    elif row.baseline_source == SAME_MACHINE:
        lines.append("  noise: unknown (fewer than 2 seeds per record reached the target)")
    else:
        lines.append("  noise: unknown (no same-machine baseline)")
    return lines


def explain_group(groups: Sequence["GroupSummary"], fail_value: float | None) -> list[str]:
    failed = "left out" if fail_value is None else f"counted as {fail_value:g}"
    lines = ["Groups: the mean of the sessions' FSR (a session that never reached the target",
             f"is {failed}), a 95% percentile bootstrap CI over sessions ({DEFAULT_RESAMPLES:,} resamples,",
             f"seed {DEFAULT_SEED}); IQM = mean of the middle 50% (trim_mean(x, 0.25), as rliable)."]
    for g in groups:
        key = group_label(g.key)
        values = ", ".join(f"{v:.3f}" for v in g.fsr_values) or "none"
        lines.append(f"  {key}: FSR values [{values}] → mean {_f(g.fsr_mean)} "
                     f"[{_f(g.fsr_ci_low)}, {_f(g.fsr_ci_high)}], IQM {_f(g.fsr_iqm)}")
    return lines


def _s(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} s"


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _g(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


# --------------------------------------------------------------------------------------------------
# Groups: mean FSR with a bootstrap CI, IQM
# --------------------------------------------------------------------------------------------------
@dataclass
class GroupSummary:
    key: dict[str, Any]
    n: int  # sessions in the group
    n_reached: int  # sessions that reached the target
    n_scored: int  # sessions that entered the FSR statistics (reached, or failed and counted as fail_value)
    fsr_mean: float | None
    fsr_ci_low: float | None
    fsr_ci_high: float | None
    fsr_iqm: float | None
    fsr_iqm_ci_low: float | None
    fsr_iqm_ci_high: float | None
    fsr_std: float | None
    best_time_median_s: float | None
    cost_usd_mean: float
    wall_time_mean_s: float
    accelerator_seconds_mean: float
    fsr_values: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iqm(values: Sequence[float]) -> float | None:
    """Interquartile mean, the definition rliable uses (scipy.stats.trim_mean(x, 0.25)): sort, drop
    floor(n/4) values from each end, average what is left."""
    data = sorted(float(v) for v in values)
    if not data:
        return None
    cut = int(0.25 * len(data))
    kept = data[cut : len(data) - cut]
    return statistics.fmean(kept)


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of a 2-D array (same definition as `iqm`)."""
    n = samples.shape[1]
    cut = int(0.25 * n)
    ordered = np.sort(samples, axis=1)
    return ordered[:, cut : n - cut].mean(axis=1)


def bootstrap_ci(
    values: Sequence[float],
    statistic: str = "mean",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean or the IQM: resample with replacement `resamples` times from
    `np.random.default_rng(seed)` (indices drawn as one (resamples, n) integer array), take the statistic of
    each resample, return its (α/2, 1−α/2) percentiles (numpy's default linear interpolation)."""
    data = np.asarray([float(v) for v in values], dtype=float)
    if data.size == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    samples = data[idx]
    stats = samples.mean(axis=1) if statistic == "mean" else _iqm_rows(samples)
    alpha = 1.0 - confidence
    low, high = np.percentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def group_summaries(
    rows: Sequence[SessionSummary],
    by: Sequence[str] = ("track", "task", "mode"),
    fail_value: float | None = 0.0,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[GroupSummary]:
    """Aggregate rows by the given columns (in first-seen order). A row whose FSR is None because nothing
    reached the target counts as `fail_value` (0.0: no speedup recovered); rows whose task has no defined
    speedup (unknown record times) are left out of the FSR statistics."""
    for column in by:
        if column not in _ROW_FIELDS:
            raise ConfigError(f"cannot group by {column!r}; columns: {', '.join(sorted(_ROW_FIELDS))}")
    groups: dict[tuple[Any, ...], list[SessionSummary]] = {}
    for row in rows:
        groups.setdefault(tuple(getattr(row, c) for c in by), []).append(row)
    out: list[GroupSummary] = []
    for key, members in groups.items():
        values = [_fsr_value(r, fail_value) for r in members]
        scored = [v for v in values if v is not None]
        mean_ci = bootstrap_ci(scored, "mean", resamples, seed)
        iqm_ci = bootstrap_ci(scored, "iqm", resamples, seed)
        times = [r.best_time_to_target_s for r in members if r.best_time_to_target_s is not None]
        out.append(
            GroupSummary(
                key=dict(zip(by, key)),
                n=len(members),
                n_reached=sum(1 for r in members if r.best_time_to_target_s is not None),
                n_scored=len(scored),
                fsr_mean=statistics.fmean(scored) if scored else None,
                fsr_ci_low=mean_ci[0] if mean_ci else None,
                fsr_ci_high=mean_ci[1] if mean_ci else None,
                fsr_iqm=iqm(scored),
                fsr_iqm_ci_low=iqm_ci[0] if iqm_ci else None,
                fsr_iqm_ci_high=iqm_ci[1] if iqm_ci else None,
                fsr_std=statistics.stdev(scored) if len(scored) > 1 else None,
                best_time_median_s=statistics.median(times) if times else None,
                cost_usd_mean=statistics.fmean(r.cost_usd for r in members),
                wall_time_mean_s=statistics.fmean(r.wall_time_s for r in members),
                accelerator_seconds_mean=statistics.fmean(r.accelerator_seconds for r in members),
                fsr_values=scored,
            )
        )
    return out


def _fsr_value(row: SessionSummary, fail_value: float | None) -> float | None:
    if row.fsr is not None:
        return row.fsr
    if row.best_time_to_target_s is None:
        # failed: counts as fail_value, but only where the task's speedup is defined
        return fsr(row.record_time_s, row.next_record_time_s, None, fail_value)
    return None


# --------------------------------------------------------------------------------------------------
# Filtering
# --------------------------------------------------------------------------------------------------
_ROW_FIELDS = frozenset(f.name for f in fields(SessionSummary))
_OPERATORS = ("!=", ">=", "<=", "=", ">", "<")


def filter_rows(rows: Sequence[SessionSummary], where: str | None) -> list[SessionSummary]:
    """Keep rows matching every comma-separated condition, e.g. `mode=auto,track=micro`.

    Conditions: `col=v`, `col!=v`, `col>v`, `col>=v`, `col<v`, `col<=v`; `col=a|b` matches either value;
    `col=none` matches an empty value. Numbers compare as numbers, everything else as text (case-insensitive).
    """
    if not where or not where.strip():
        return list(rows)
    conditions = [_parse_condition(part) for part in where.split(",") if part.strip()]
    return [row for row in rows if all(_matches(row, c) for c in conditions)]


def _parse_condition(text: str) -> tuple[str, str, list[str]]:
    for op in _OPERATORS:
        if op in text:
            column, value = text.split(op, 1)
            column = column.strip()
            if column not in _ROW_FIELDS:
                raise ConfigError(
                    f"--where: unknown column {column!r}; columns: {', '.join(sorted(_ROW_FIELDS))}"
                )
            return column, op, [v.strip() for v in value.split("|")]
    raise ConfigError(f"--where: {text!r} is not a condition; write e.g. mode=auto,track=micro")


def _matches(row: SessionSummary, condition: tuple[str, str, list[str]]) -> bool:
    column, op, wanted = condition
    actual = getattr(row, column)
    if op in ("=", "!="):
        hit = any(_equal(actual, w) for w in wanted)
        return hit if op == "=" else not hit
    left = _num(actual)
    right = _num(wanted[0])
    if left is None or right is None:
        return False
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]


def _equal(actual: Any, wanted: str) -> bool:
    if actual is None or actual == "":
        return wanted.lower() in ("", "none", "null")
    if isinstance(actual, bool):
        return str(actual).lower() == wanted.lower()
    if isinstance(actual, (int, float)):
        number = _num(wanted)
        return number is not None and math.isclose(float(actual), number, rel_tol=0, abs_tol=1e-12)
    return str(actual).lower() == wanted.lower()


# --------------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------------
def write_csv(rows: Sequence[SessionSummary], path_or_dash: str | Path) -> None:
    """One line per session, columns CSV_COLUMNS (problems as a count). "-" writes to stdout."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = row.to_dict()
        values["problems"] = len(row.problems)
        writer.writerow([_csv_cell(values[c]) for c in CSV_COLUMNS])
    _write_text(buffer.getvalue(), path_or_dash)


def write_json(
    rows: Sequence[SessionSummary], groups: Sequence[GroupSummary] | None, path_or_dash: str | Path
) -> None:
    """{"sessions": [...rows...], "groups": [...]} as UTF-8 JSON. "-" writes to stdout."""
    document = {
        "sessions": [row.to_dict() for row in rows],
        "groups": [group.to_dict() for group in groups or []],
    }
    _write_text(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n", path_or_dash)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6)) if math.isfinite(value) else ""
    return value


def _write_text(text: str, path_or_dash: str | Path) -> None:
    if str(path_or_dash) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(path_or_dash)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def plot(rows: Sequence[SessionSummary], out_png: str | Path, fail_value: float | None = 0.0) -> Path:
    """Two panels: mean FSR by mode for each task (dots = sessions), and best time to target against session
    wall time (one step curve per session). Every series drawn has a legend entry. Needs matplotlib
    (`pip install 'speedcopilot[plot]'`). Returns the file written."""
    plt = _pyplot()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = figure(rows, fail_value, plt)
    try:
        fig.savefig(out, dpi=120)
    finally:
        plt.close(fig)
    return out


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpeedcopilotError(
            "plotting needs matplotlib, which is not installed: run `pip install 'speedcopilot[plot]'` "
            "(or `pip install matplotlib`), or export CSV/JSON instead"
        ) from None
    return plt


def figure(rows: Sequence[SessionSummary], fail_value: float | None = 0.0, plt: Any = None) -> Any:
    """The comparison figure (the caller closes it)."""
    plt = plt or _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    _plot_fsr(left, rows, fail_value)
    _plot_curves(right, rows)
    fig.tight_layout()
    return fig


def _plot_fsr(ax: Any, rows: Sequence[SessionSummary], fail_value: float | None) -> None:
    tasks = list(dict.fromkeys(r.task or "?" for r in rows))
    modes = list(dict.fromkeys(r.mode or "?" for r in rows))
    width = 0.8 / max(1, len(modes))
    labelled: set[str] = set()
    for m_index, mode in enumerate(modes):
        for t_index, task in enumerate(tasks):
            members = [r for r in rows if (r.task or "?") == task and (r.mode or "?") == mode]
            values = [v for v in (_fsr_value(r, fail_value) for r in members) if v is not None]
            x = t_index - 0.4 + width * (m_index + 0.5)
            if values:
                first = mode not in labelled
                ax.bar(x, statistics.fmean(values), width, color=f"C{m_index}", alpha=0.5,
                       label=f"{mode}: mean FSR" if first else None)
                ax.scatter([x] * len(values), values, color=f"C{m_index}", s=12, zorder=3,
                           label=f"{mode}: one session" if first else None)
                labelled.add(mode)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, rotation=20, ha="right")
    ax.axhline(0.0, color="grey", linewidth=0.8, label="FSR 0: the starting record's time")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--", label="FSR 1: the next record's time")
    ax.set_ylabel("FSR")
    ax.set_title("Fraction of speedup recovered by mode")
    ax.legend(fontsize="small")


def _plot_curves(ax: Any, rows: Sequence[SessionSummary]) -> None:
    modes = list(dict.fromkeys(r.mode or "?" for r in rows))
    drawn = 0
    for row in rows:
        if not row.best_time_curve:
            continue
        mode = row.mode or "?"
        xs = [p[0] / 60.0 for p in row.best_time_curve] + [row.wall_time_s / 60.0]
        ys = [p[1] for p in row.best_time_curve] + [row.best_time_curve[-1][1]]
        # one series per session: the step curve, with a marker at each improvement
        ax.plot(xs, ys, drawstyle="steps-post", color=f"C{modes.index(mode)}", alpha=0.8, marker="o",
                markersize=3, markevery=list(range(len(xs) - 1)), label=f"{mode} {row.folder or row.session_id}")
        drawn += 1
    ax.set_xlabel("session wall time (min)")
    ax.set_ylabel("best time to target (s)")
    ax.set_title("Best time to target over the session")
    if drawn:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no session reached the target", ha="center", va="center", transform=ax.transAxes)


# --------------------------------------------------------------------------------------------------
# Tolerant field readers
# --------------------------------------------------------------------------------------------------
def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _num(value)
    return int(number) if number is not None and number == int(number) else None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
