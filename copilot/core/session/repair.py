"""Settling the runs a session left open: the one path by which every driver records a run's end.

Whoever opens a session next — `run --session`, `auto --resume`, `start --resume` or `sessions repair` — goes
through `Session.open` (which records the end of runs that left a result.json and re-attaches to the others) and
then `settle_runs`: the session's own watchers take over the re-attached runs; a run whose process has ended is
classified at once from its output.log and exit_code (metrics the log missed are added), and a run still
training is followed to its end or left to the next opener.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class RunEnding:
    """What became of a run the log had open: its outcome now (None while it still trains)."""

    run_id: str
    commit: str
    outcome: str | None
    recorded_by: str | None = None
    problem: str | None = None  # why the run could not be re-attached (its folder is gone or unreadable)

    @property
    def still_training(self) -> bool:
        return self.outcome is None and self.problem is None


def open_runs(state: Any) -> list[str]:
    """The runs a log shows as running (read before the session is opened)."""
    return [run_id for run_id, run in state.runs.items() if run.is_live]


async def settle_runs(session: Any, run_ids: Iterable[str], *, follow: bool = False) -> list[RunEnding]:
    """Record the end of every run in `run_ids` whose process has ended; with `follow`, also wait for the
    ones still training. Returns where each run stands afterwards."""
    run_ids = list(run_ids)
    session.resume_watching()
    held = set(session.live_runs())
    waits = [session.wait_run(r) for r in run_ids if r in held and (follow or not session.run_is_alive(r))]
    results = await asyncio.gather(*waits, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [_ending(session, run_id, held) for run_id in run_ids]


def _ending(session: Any, run_id: str, held: set[str]) -> RunEnding:
    run = session.state.runs[run_id]
    if not run.is_live:
        result = run.result or {}
        return RunEnding(run_id, run.commit, run.status, result.get("recorded_by"))
    if run_id in held:
        return RunEnding(run_id, run.commit, None)
    problem = next((m for m in reversed(session.state.errors) if run_id in m), "it could not be re-attached")
    return RunEnding(run_id, run.commit, None, problem=problem)
