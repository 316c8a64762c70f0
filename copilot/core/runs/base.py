"""The run folder contract and the vocabulary of runs: specs, handles, results and outcomes.

A run lives in its own folder (`run_dir`), which is the whole contract between a runner and the watcher:

    run.json     what was started: pid, process group, command, cwd, started_at (unix s), host, target, limits
    output.log   stdout + stderr of the command (a remote runner mirrors the remote log here)
    exit_code    the command's exit status, written by a wrapper shell when the command ends, even if the
                 process that started the run is long gone
    cancelled    marker: someone asked for the run to stop (written before the signals go out)
    result.json  the RunResult once a watcher has classified the run

`watch.watch_run` uses only these files and the RunHandle methods, so it works for any runner (local, SSH,
SLURM), for a run started by this process, and for a run re-attached after the UI died.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Iterable

from copilot.core.errors import RunError
from copilot.core.runs.crash import crash_summary
from copilot.core.runs.logparse import LogParser
from copilot.core.runs.metrics import MetricPoint, time_to_target_ms, timer_runs_fast

RUN_JSON = "run.json"
OUTPUT_LOG = "output.log"
EXIT_CODE = "exit_code"
CANCELLED = "cancelled"
STOPPED_AT_TARGET = "stopped_at_target"
RESULT_JSON = "result.json"

ERROR_TAIL_LINES = 40
SHORT_TAIL_LINES = 10

class Outcome(str, Enum):
    REACHED_TARGET = "reached_target"
    ABOVE_TARGET = "above_target"
    CRASHED = "crashed"
    DIVERGED = "diverged"
    HUNG = "hung"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    NO_METRIC = "no_metric"  # exited 0 without printing a single metric line


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    command: list[str]
    cwd: Path
    run_dir: Path
    env: dict[str, str]
    target_val_loss: float
    timeout_s: float | None = None
    hang_timeout_s: float | None = 300.0
    stop_at_target: bool = False  # end the run at the first validation at or below the target


@dataclass
class RunResult:
    """How a run ended. `reached_target` is a fact about the metrics (some val loss <= target), kept even when
    the outcome is not REACHED_TARGET (e.g. a crash in teardown after the last validation)."""

    run_id: str
    outcome: Outcome
    reached_target: bool
    time_to_target_ms: float | None
    final_val_loss: float | None
    best_val_loss: float | None
    train_time_ms: float | None  # the script's own clock, from its last point that carries one
    wall_time_s: float  # the runner's clock: process start to exit
    exit_code: int | None
    steps: int | None
    error_tail: list[str] = field(default_factory=list)
    peak_memory_mib: int | None = None
    timer_gap: float | None = None  # wall time / script train time; < 1 means the script's timer ran fast
    error_summary: str | None = None  # one readable line for a crash: rank, exception, message, script:line
    stopped_at_target: bool = False  # the watcher ended it at the target (stop_at_target)
    queue_time_s: float | None = None  # time a scheduler held it before it started (SLURM), not run time

    @property
    def timer_suspect(self) -> bool:
        """The script claims more training time than the process lived (beyond the clocks' slack, the same test
        as the guard's timer-gap note): its timer cannot be trusted."""
        return timer_runs_fast(self.wall_time_s, self.train_time_ms)

    def to_event_fields(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["timer_suspect"] = self.timer_suspect
        return data

    @classmethod
    def from_event_fields(cls, data: dict[str, Any]) -> "RunResult":
        names = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["outcome"] = Outcome(kwargs["outcome"])
        kwargs["error_tail"] = list(kwargs.get("error_tail") or [])
        return cls(**kwargs)


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by start time (UTC), e.g. "r-20261126-171500-ab12"."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("r-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


# -- handles ---------------------------------------------------------------------------------------------


class RunHandle(ABC):
    """A started run. Runners (local, ssh, slurm) implement is_alive, exit_code and kill."""

    run_id: str
    run_dir: Path
    started_at: float  # unix seconds, taken by the runner just before the process started
    queue_time_s: float | None = None  # seconds a scheduler kept the run queued before it started (SLURM)

    @abstractmethod
    def is_alive(self) -> bool: ...

    @abstractmethod
    def exit_code(self) -> int | None:
        """The command's exit status once known (None while running, or when it was killed by a signal
        and nobody saw the status)."""

    @abstractmethod
    def kill(self, grace_s: float = 5.0) -> None:
        """Stop the run and everything it started: SIGTERM, then SIGKILL after grace_s. Blocks until dead
        (for callers without an event loop; watchers use `stop`, which never blocks)."""

    def terminate(self) -> None:
        """Ask the run to stop (SIGTERM to its process group) and return at once."""
        self.kill(0.0)

    def force_kill(self) -> None:
        """Kill whatever is left of the run (SIGKILL) and return at once."""
        self.kill(0.0)

    def any_alive(self) -> bool:
        """The command or anything it started (its process group) still runs."""
        return self.is_alive()

    async def stop(self, grace_s: float = 5.0, poll_s: float = 0.05) -> None:
        """SIGTERM now, SIGKILL after grace_s if anything is left; awaits, never blocks the loop."""
        import asyncio

        await asyncio.to_thread(self.terminate)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        # any_alive may scan /proc or ask a remote host: off the loop, like the signals
        while await asyncio.to_thread(self.any_alive) and loop.time() < deadline:
            await asyncio.sleep(poll_s)
        if await asyncio.to_thread(self.any_alive):
            await asyncio.to_thread(self.force_kill)

    def request_stop(self) -> None:
        """The user's cancel: the marker (watchers report CANCELLED) and SIGTERM; the watcher escalates."""
        mark_cancelled(self.run_dir)
        self.terminate()

    def is_pending(self) -> bool:
        """Queued by a scheduler and not started yet: no run time passes, so no hang or run timeout counts."""
        return False

    def scheduler_outcome(self) -> tuple[Outcome, str] | None:
        """How a scheduler ended the run when it, not the command, decided (time limit, cancel, preemption,
        node failure), with a line that says why; None for runners without a scheduler."""
        return None

    def cancel(self, grace_s: float = 5.0) -> None:
        """Stop the run on the user's request and wait for it (blocking; see request_stop)."""
        mark_cancelled(self.run_dir)
        self.kill(grace_s)

    def ended_at(self) -> float | None:
        """When the command ended (the exit_code file's mtime), if it ended normally."""
        try:
            return (self.run_dir / EXIT_CODE).stat().st_mtime
        except OSError:
            return None

    @property
    def output_path(self) -> Path:
        return self.run_dir / OUTPUT_LOG


def mark_cancelled(run_dir: Path) -> None:
    (run_dir / CANCELLED).write_text(f"{time.time()}\n")


def is_cancelled(run_dir: Path) -> bool:
    return (run_dir / CANCELLED).exists()


def mark_stopped_at_target(run_dir: Path) -> None:
    """Written before a watcher stops a run at the target, so whoever classifies it (maybe a watcher that
    re-attached after a crash) knows the SIGTERM was the score, not a failure."""
    (run_dir / STOPPED_AT_TARGET).write_text(f"{time.time()}\n")


def is_stopped_at_target(run_dir: Path) -> bool:
    return (run_dir / STOPPED_AT_TARGET).exists()


def read_exit_code(run_dir: Path) -> int | None:
    try:
        return int((run_dir / EXIT_CODE).read_text().strip())
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Whole or not at all, and durable: run.json and result.json are what a resume re-attaches and records
    from, and the session log (fsync'd) already names the run, so a disk error must not leave them empty."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)

def read_run_info(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_JSON
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RunError(f"no {RUN_JSON} in {run_dir}: not a run folder, or the run never started") from exc
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} is unreadable ({exc}); the run cannot be re-attached") from exc


def load_spec(run_dir: Path) -> RunSpec:
    """The RunSpec of a run from its run.json, for re-attaching (the environment is not stored: it may
    hold secrets)."""
    info = read_run_info(run_dir)
    return RunSpec(
        run_id=str(info["run_id"]),
        command=list(info["command"]),
        cwd=Path(info["cwd"]),
        run_dir=Path(run_dir),
        env={},
        target_val_loss=float(info["target_val_loss"]),
        timeout_s=info.get("timeout_s"),
        hang_timeout_s=info.get("hang_timeout_s"),
        stop_at_target=bool(info.get("stop_at_target", False)),
    )


# -- results ---------------------------------------------------------------------------------------------


def write_result(run_dir: Path, result: RunResult) -> None:
    _write_json_atomic(Path(run_dir) / RESULT_JSON, result.to_event_fields())


def read_result(run_dir: Path) -> RunResult | None:
    """The stored result of a finished run, or None if there is none (or it is unreadable)."""
    try:
        return RunResult.from_event_fields(json.loads((Path(run_dir) / RESULT_JSON).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def classify(
    *,
    exit_code: int | None,
    reached_target: bool,
    nan_seen: bool = False,
    cancelled: bool = False,
    killed_for: Outcome | None = None,
    has_metrics: bool = True,
) -> Outcome:
    """How a run ended. Precedence: cancelled > what the watcher killed it for (diverged, hung, timed out,
    reached target with stop_at_target) > a NaN/inf loss > a non-zero or unknown exit status > no metric at
    all > reached target or not."""
    if cancelled:
        return Outcome.CANCELLED
    if killed_for is not None:
        return killed_for
    if nan_seen:
        return Outcome.DIVERGED
    if exit_code != 0:
        return Outcome.CRASHED
    if not has_metrics:
        return Outcome.NO_METRIC
    return Outcome.REACHED_TARGET if reached_target else Outcome.ABOVE_TARGET


def error_tail(lines: Iterable[str], outcome: Outcome) -> list[str]:
    """The lines worth showing for an outcome. For a crash: the failing worker's own traceback (under
    torchrun: the root-cause rank's, prefixes removed, not torchrun's ChildFailedError wrapper), else from
    the last traceback on; for other endings the last few lines."""
    if outcome in (Outcome.REACHED_TARGET, Outcome.ABOVE_TARGET):
        return []
    if outcome is Outcome.NO_METRIC:
        return list(lines)[-SHORT_TAIL_LINES:]
    lines = list(lines)
    if outcome is Outcome.CRASHED:
        crash = crash_summary(lines)
        torchrun = crash is not None and (crash.rank is not None or crash.root_cause is not None)
        if torchrun and crash is not None and crash.traceback:
            return crash.traceback[-ERROR_TAIL_LINES:]
        for index in range(len(lines) - 1, -1, -1):
            if "Traceback (most recent call last)" in lines[index]:
                return lines[index:][-ERROR_TAIL_LINES:]
        return lines[-ERROR_TAIL_LINES // 2 :]
    return lines[-SHORT_TAIL_LINES:]


def error_summary(lines: Iterable[str], outcome: Outcome) -> str | None:
    """The one-line cause of a crash (see runs.crash), or None for other outcomes or when none shows."""
    if outcome is not Outcome.CRASHED:
        return None
    crash = crash_summary(list(lines))
    return crash.headline() if crash is not None else None


def reached_target(points: Iterable[MetricPoint], target: float) -> bool:
    """Some validation loss is at or below the target (NaN never is)."""
    return any(p.val_loss is not None and p.val_loss <= target for p in points)


def summarize(
    run_id: str,
    parser: LogParser,
    target: float,
    outcome: Outcome,
    exit_code: int | None,
    wall_time_s: float,
) -> RunResult:
    vals = [p.val_loss for p in parser.points if p.val_loss is not None]
    finite = [v for v in vals if math.isfinite(v)]
    train_time = next((p.train_time_ms for p in reversed(parser.points) if p.train_time_ms is not None), None)
    gap = None
    if train_time is not None and train_time > 0:
        gap = wall_time_s * 1000.0 / train_time
    return RunResult(
        run_id=run_id,
        outcome=outcome,
        reached_target=reached_target(parser.points, target),
        time_to_target_ms=time_to_target_ms(parser.points, target),
        final_val_loss=vals[-1] if vals else None,
        best_val_loss=min(finite) if finite else None,
        train_time_ms=train_time,
        wall_time_s=wall_time_s,
        exit_code=exit_code,
        steps=parser.points[-1].step if parser.points else None,
        error_tail=error_tail(parser.last_lines, outcome),
        error_summary=error_summary(parser.last_lines, outcome),
        peak_memory_mib=parser.peak_memory[0] if parser.peak_memory else None,
        timer_gap=gap,
    )


