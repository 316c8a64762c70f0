"""Runs: launch a training command, watch its log, classify how it ended.

    base.py      the run-folder contract, RunSpec / RunHandle / RunResult, outcomes and their classification
    local.py     the local runner (detached process group, re-attach)
    ssh.py       the SSH runner (same handle interface, system ssh)
    slurm.py     the SLURM runner (sbatch/scontrol/scancel; queue time kept apart from run time)
    watch.py     watch_run: tail output.log, stop on divergence / hang / timeout, classify
    logparse.py  upstream log formats of every era -> MetricPoint
    metrics.py   MetricPoint and time-to-target
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot._lazy import lazy_exports

_EXPORTS = {
    "CANCELLED": "base",
    "ERROR_TAIL_LINES": "base",
    "EXIT_CODE": "base",
    "OUTPUT_LOG": "base",
    "READ_CHUNK": "watch",
    "RESULT_JSON": "base",
    "RUN_JSON": "base",
    "SHORT_TAIL_LINES": "base",
    "LocalRunHandle": "local",
    "LocalRunner": "local",
    "Outcome": "base",
    "RunHandle": "base",
    "RunResult": "base",
    "RunSpec": "base",
    "classify": "base",
    "error_tail": "base",
    "group_alive": "local",
    "group_members": "local",
    "is_cancelled": "base",
    "load_spec": "base",
    "mark_cancelled": "base",
    "new_run_id": "base",
    "read_exit_code": "base",
    "read_result": "base",
    "read_run_info": "base",
    "reached_target": "base",
    "summarize": "base",
    "watch_run": "watch",
    "write_result": "base",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what type checkers and readers see
    from copilot.core.runs.base import (
        CANCELLED,
        ERROR_TAIL_LINES,
        EXIT_CODE,
        OUTPUT_LOG,
        RESULT_JSON,
        RUN_JSON,
        SHORT_TAIL_LINES,
        Outcome,
        RunHandle,
        RunResult,
        RunSpec,
        classify,
        error_tail,
        is_cancelled,
        load_spec,
        mark_cancelled,
        new_run_id,
        read_exit_code,
        read_result,
        read_run_info,
        reached_target,
        summarize,
        write_result,
    )
    from copilot.core.runs.local import LocalRunHandle, LocalRunner, group_alive, group_members
    from copilot.core.runs.watch import READ_CHUNK, watch_run

__all__ = [
    "CANCELLED", "ERROR_TAIL_LINES", "EXIT_CODE", "OUTPUT_LOG", "READ_CHUNK", "RESULT_JSON", "RUN_JSON",
    "SHORT_TAIL_LINES", "LocalRunHandle", "LocalRunner", "Outcome", "RunHandle", "RunResult", "RunSpec",
    "classify", "error_tail", "group_alive", "group_members", "is_cancelled", "load_spec", "mark_cancelled",
    "new_run_id", "read_exit_code", "read_result", "read_run_info", "reached_target", "summarize",
    "watch_run", "write_result",
]
