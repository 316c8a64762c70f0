"""Watching a run: tail its output.log, stop it on divergence, hang or timeout, classify how it ended."""

from __future__ import annotations

import asyncio
import codecs
import time
from pathlib import Path
from typing import Any, Callable

from copilot.core.runs.base import (
    OUTPUT_LOG,
    Outcome,
    RunHandle,
    RunResult,
    RunSpec,
    classify,
    is_cancelled,
    is_stopped_at_target,
    mark_stopped_at_target,
    reached_target,
    summarize,
    write_result,
)
from copilot.core.runs.logparse import LogParser
from copilot.core.runs.metrics import MetricPoint

READ_CHUNK = 1 << 20  # bytes per read of the part before from_offset (parsed without callbacks)
LIVE_CHUNK = 1 << 14  # bytes per read while tailing (~400 lines of a training log): the loop gets a turn between chunks

# -- watching --------------------------------------------------------------------------------------------


class _Tail:
    """Reads what was appended to the run's log and feeds it to the parser and the callbacks."""

    def __init__(
        self,
        path: Path,
        parser: LogParser,
        on_line: Callable[[str], None] | None,
        on_metric: Callable[[MetricPoint], None] | None,
        from_offset: int,
    ) -> None:
        self.path = path
        self.parser = parser
        self.on_line = on_line
        self.on_metric = on_metric
        self.from_offset = from_offset
        self._fh: Any = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def _open(self) -> bool:
        if self._fh is not None:
            return True
        try:
            self._fh = open(self.path, "rb")
        except FileNotFoundError:
            return False
        # Lines before from_offset are parsed without callbacks, so the result still covers the whole run.
        remaining = self.from_offset
        while remaining > 0:
            data = self._fh.read(min(remaining, READ_CHUNK))
            if not data:
                break
            remaining -= len(data)
            self.parser.feed(self._decoder.decode(data))
        return True

    async def read(self) -> bool:
        """Consume everything appended since the last call; True if anything was."""
        if not self._open():
            return False
        got = False
        while True:
            data = self._fh.read(LIVE_CHUNK)
            if not data:
                return got
            got = True
            self._emit(self.parser.feed(self._decoder.decode(data), self.on_line))
            if len(data) == LIVE_CHUNK:
                await asyncio.sleep(0)

    def finish(self) -> None:
        tail = self._decoder.decode(b"", final=True)
        points = self.parser.feed(tail, self.on_line) if tail else []
        self._emit(points + self.parser.flush(self.on_line))

    def _emit(self, points: list[MetricPoint]) -> None:
        if self.on_metric is not None:
            for point in points:
                self.on_metric(point)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _through_target(points: list[MetricPoint], target: float) -> list[MetricPoint]:
    for index, point in enumerate(points):
        if point.val_loss is not None and point.val_loss <= target:
            return points[: index + 1]
    return points


async def watch_run(
    handle: RunHandle,
    spec: RunSpec,
    on_line: Callable[[str], None] | None = None,
    on_metric: Callable[[MetricPoint], None] | None = None,
    poll_s: float = 0.1,
    from_offset: int = 0,
    *,
    kill_grace_s: float = 5.0,
    save_result: bool = True,
    clock: Callable[[], float] = time.monotonic,
    on_running: Callable[[], None] | None = None,
    on_poll: Callable[[], None] | None = None,
) -> RunResult:
    """Tail the run's output.log until the run ends; stop it on divergence, hang, timeout, or (stop_at_target)
    at the target; end whatever it left running; classify it.

    Callbacks get the lines and points after from_offset (bytes); what came before is parsed silently so the
    result covers the whole run. Cancelling the task that awaits this stops the watching, never the run. A run
    a scheduler still holds (`handle.is_pending()`) counts neither as hung nor towards its timeout. Stopping
    never blocks the loop: SIGTERM, then SIGKILL after kill_grace_s, awaited. The result is also written to
    run_dir/result.json unless save_result is False. `on_running` is called once, when the run is first seen
    alive and no longer queued (its run time starts then: `handle.started_at`). `on_poll` is called once per
    poll; what it raises ends the watching (never the run), e.g. the session's disk turning read-only.
    """
    parser = LogParser()
    tail = _Tail(handle.run_dir / OUTPUT_LOG, parser, on_line, on_metric, from_offset)
    killed_for: Outcome | None = None
    cancelled = False
    last_output = clock()
    saw_alive = False
    try:
        while True:
            if await tail.read():
                last_output = clock()
            if on_poll is not None:
                on_poll()
            alive = handle.is_alive()
            saw_alive = saw_alive or alive
            pending = alive and handle.is_pending()
            if pending:
                last_output = clock()  # a queued run is not silent: the hang timer starts with the run
            elif alive and on_running is not None:
                on_running()
                on_running = None
            if parser.nan_seen:
                killed_for = Outcome.DIVERGED
            elif is_cancelled(handle.run_dir):
                cancelled = True
            elif spec.stop_at_target and reached_target(parser.points, spec.target_val_loss):
                killed_for = Outcome.REACHED_TARGET
                mark_stopped_at_target(handle.run_dir)
            elif not alive:
                break
            elif pending:
                pass
            elif spec.timeout_s is not None and time.time() - handle.started_at > spec.timeout_s:
                killed_for = Outcome.TIMED_OUT
            elif spec.hang_timeout_s is not None and clock() - last_output > spec.hang_timeout_s:
                killed_for = Outcome.HUNG
            if killed_for is not None or cancelled:
                await handle.stop(kill_grace_s)
                break
            await asyncio.sleep(poll_s)
        await tail.read()
        tail.finish()
    finally:
        tail.close()
    if await asyncio.to_thread(handle.any_alive):  # the command ended but left children (`sleep 300 &`): end them
        await handle.stop(min(kill_grace_s, 1.0))
    ended = handle.ended_at()
    if ended is None:
        # Killed (no exit status written): it ended now, or, if it was already dead when we came, at its
        # last output.
        ended = time.time() if saw_alive else _mtime(handle.run_dir / OUTPUT_LOG) or time.time()
    wall_time_s = max(0.0, ended - handle.started_at)
    exit_code = handle.exit_code()
    stopped = killed_for is Outcome.REACHED_TARGET or (killed_for is None and is_stopped_at_target(handle.run_dir))
    if stopped:  # the score is the crossing: what the process printed after it is not part of the run
        killed_for = Outcome.REACHED_TARGET
        parser.points = _through_target(parser.points, spec.target_val_loss)
    cancelled = cancelled or is_cancelled(handle.run_dir)
    verdict = handle.scheduler_outcome() if killed_for is None and not cancelled else None
    outcome = classify(
        exit_code=exit_code,
        reached_target=reached_target(parser.points, spec.target_val_loss),
        nan_seen=parser.nan_seen,
        cancelled=cancelled,
        killed_for=killed_for or (verdict[0] if verdict else None),
        has_metrics=bool(parser.points),
    )
    result = summarize(handle.run_id, parser, spec.target_val_loss, outcome, exit_code, wall_time_s)
    result.stopped_at_target = stopped
    result.queue_time_s = getattr(handle, "queue_time_s", None)
    if verdict is not None:
        result.error_tail.append(verdict[1])
        if verdict[0] is Outcome.CRASHED:
            result.error_summary = verdict[1]  # the scheduler's reason is the cause, not what the log shows
    if save_result:
        write_result(handle.run_dir, result)
    return result
