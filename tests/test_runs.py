"""Runs with real subprocesses: launch detached, watch, classify, kill, cancel, re-attach, survive the parent."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from copilot.core.edits.guard import timer_gap_flag
from copilot.core.errors import RunError
from copilot.core.runs.metrics import MetricPoint
from copilot.core.runs import (
    EXIT_CODE,
    OUTPUT_LOG,
    RUN_JSON,
    LocalRunner,
    Outcome,
    RunResult,
    classify,
    error_tail,
    load_spec,
    new_run_id,
    read_result,
    watch_run,
    write_result,
)
from tests.support.runs import (
    ABOVE,
    CHATTY,
    CRASHES,
    DIVERGES,
    HANGS,
    LYING_TIMER,
    PYTHON,
    REACHES,
    SLOW_REACHES,
    STUBBORN,
    group_gone,
    kill_quietly,
    make_spec,
    pid_alive,
    wait_for,
)
from tests.support.waiting import HANG_GUARD_S, until

FAST = dict(poll_s=0.05, kill_grace_s=1.0)


@pytest.fixture
def runner():
    """A LocalRunner whose started runs are all killed at teardown, whatever the test did."""
    local = LocalRunner()
    started = []
    original = local.start

    def start(spec):
        handle = original(spec)
        started.append(handle)
        return handle

    local.start = start  # type: ignore[method-assign]
    yield local
    for handle in started:
        if not group_gone(handle.pgid):
            handle.kill(grace_s=0.2)


# -- pure parts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(exit_code=0, reached_target=True), Outcome.REACHED_TARGET),
        (dict(exit_code=0, reached_target=False), Outcome.ABOVE_TARGET),
        (dict(exit_code=1, reached_target=False), Outcome.CRASHED),
        (dict(exit_code=1, reached_target=True), Outcome.CRASHED),
        (dict(exit_code=None, reached_target=False), Outcome.CRASHED),
        (dict(exit_code=-9, reached_target=False), Outcome.CRASHED),
        (dict(exit_code=0, reached_target=True, nan_seen=True), Outcome.DIVERGED),
        (dict(exit_code=1, reached_target=False, nan_seen=True), Outcome.DIVERGED),
        (dict(exit_code=-15, reached_target=False, killed_for=Outcome.HUNG), Outcome.HUNG),
        (dict(exit_code=-15, reached_target=True, killed_for=Outcome.TIMED_OUT), Outcome.TIMED_OUT),
        (dict(exit_code=-15, reached_target=False, nan_seen=True, killed_for=Outcome.DIVERGED), Outcome.DIVERGED),
        (dict(exit_code=-15, reached_target=False, cancelled=True, killed_for=Outcome.HUNG), Outcome.CANCELLED),
        (dict(exit_code=0, reached_target=True, cancelled=True), Outcome.CANCELLED),
    ],
)
def test_classify(kwargs, expected) -> None:
    assert classify(**kwargs) is expected


def test_error_tail_starts_at_the_last_traceback() -> None:
    lines = ["a", "Traceback (most recent call last):", "old", "b", "Traceback (most recent call last):", "x", "E"]
    assert error_tail(lines, Outcome.CRASHED) == ["Traceback (most recent call last):", "x", "E"]
    assert error_tail([str(i) for i in range(100)], Outcome.CRASHED) == [str(i) for i in range(80, 100)]
    assert error_tail(lines, Outcome.REACHED_TARGET) == []
    assert error_tail([str(i) for i in range(100)], Outcome.HUNG) == [str(i) for i in range(90, 100)]


def test_new_run_id_sorts_by_time() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 11, 26, 17, 15, 0, tzinfo=timezone.utc)
    first = new_run_id(moment)
    assert first.startswith("r-20261126-171500-") and len(first) == len("r-20261126-171500-ab12")
    second = new_run_id(moment + timedelta(seconds=1))
    assert sorted([second, first]) == [first, second]
    later_in_another_zone = datetime(2026, 11, 26, 18, 15, 5, tzinfo=timezone(timedelta(hours=1)))
    assert new_run_id(later_in_another_zone).startswith("r-20261126-171505-")  # always UTC
    assert new_run_id().startswith(datetime.now(timezone.utc).strftime("r-%Y%m%d-"))
    assert len({new_run_id() for _ in range(50)}) > 40  # random suffix


def test_result_round_trip_keeps_nan(tmp_path: Path) -> None:
    result = RunResult(
        run_id="r-1",
        outcome=Outcome.DIVERGED,
        reached_target=False,
        time_to_target_ms=None,
        final_val_loss=math.nan,
        best_val_loss=3.5,
        train_time_ms=114.0,
        wall_time_s=1.5,
        exit_code=-15,
        steps=2,
        error_tail=["step:2/100 train_loss:nan"],
        peak_memory_mib=None,
        timer_gap=13.1,
    )
    write_result(tmp_path, result)
    back = read_result(tmp_path)
    assert back is not None and back.outcome is Outcome.DIVERGED and math.isnan(back.final_val_loss)
    assert back.error_tail == result.error_tail and back.timer_gap == 13.1
    fields = result.to_event_fields()
    assert fields["outcome"] == "diverged" and fields["timer_suspect"] is False
    assert read_result(tmp_path / "nowhere") is None
    (tmp_path / "result.json").write_text("{torn")
    assert read_result(tmp_path) is None


# -- start errors ----------------------------------------------------------------------------------------


def test_start_refuses_bad_specs(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, REACHES)
    with pytest.raises(RunError, match="not found on PATH"):
        runner.start(_replace(spec, command=["no-such-trainer-xyz"]))
    with pytest.raises(RunError, match="does not exist"):
        runner.start(_replace(spec, cwd=tmp_path / "missing"))
    with pytest.raises(RunError, match="empty"):
        runner.start(_replace(spec, command=[]))
    with pytest.raises(RunError, match="not a run folder"):
        runner.attach(tmp_path)


async def test_start_refuses_a_used_run_folder(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, REACHES)
    handle = runner.start(spec)
    with pytest.raises(RunError, match="already holds a run"):
        runner.start(spec)
    await watch_run(handle, spec, **FAST)


def _replace(spec, **changes):
    from dataclasses import replace

    return replace(spec, **changes)


# -- outcomes with real processes ------------------------------------------------------------------------


async def test_reaches_target_with_time_to_target(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, REACHES)
    handle = runner.start(spec)
    info = json.loads((spec.run_dir / RUN_JSON).read_text())
    assert info["pid"] == handle.pid and info["pgid"] == handle.pid and info["command"] == spec.command
    lines: list[str] = []
    points: list[MetricPoint] = []
    result = await watch_run(handle, spec, on_line=lines.append, on_metric=points.append, **FAST)
    assert result.outcome is Outcome.REACHED_TARGET and result.reached_target
    assert result.time_to_target_ms == 150.0
    assert result.final_val_loss == 3.2775 and result.best_val_loss == 3.2775
    assert result.train_time_ms == 150.0 and result.steps == 30
    assert result.exit_code == 0 and (spec.run_dir / EXIT_CODE).read_text().strip() == "0"
    assert result.peak_memory_mib == 30220
    assert result.error_tail == []
    assert result.wall_time_s > 0.15  # the script sleeps longer than its claimed train time
    assert result.timer_gap is not None and result.timer_gap > 1.0 and not result.timer_suspect
    assert [p.val_loss for p in points if p.is_val] == [4.0, 3.5, 3.3, 3.2775]
    assert lines[0].startswith("Running Python") and lines[-1].startswith("peak memory")
    assert read_result(spec.run_dir) == result


async def test_above_target(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, ABOVE)
    result = await watch_run(runner.start(spec), spec, **FAST)
    assert result.outcome is Outcome.ABOVE_TARGET and not result.reached_target
    assert result.time_to_target_ms is None and result.final_val_loss == 3.31 and result.exit_code == 0


async def test_crash_reports_exit_code_and_traceback_tail(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, CRASHES)
    result = await watch_run(runner.start(spec), spec, **FAST)
    assert result.outcome is Outcome.CRASHED and result.exit_code == 1
    assert result.error_tail[0] == "Traceback (most recent call last):"
    assert result.error_tail[-1] == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"


async def test_script_killed_by_a_signal_is_a_crash_with_the_shell_status(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, "val(0, 10, 4.0, 0)\nimport signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    result = await watch_run(runner.start(spec), spec, **FAST)
    assert result.outcome is Outcome.CRASHED and result.exit_code == 128 + 9  # what the OOM killer leaves


async def test_nan_loss_kills_the_run_as_diverged(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, DIVERGES)
    handle = runner.start(spec)
    result = await watch_run(handle, spec, **FAST)
    assert result.outcome is Outcome.DIVERGED
    assert group_gone(handle.pgid)
    script_pid = int((spec.cwd / "pid").read_text())
    assert not pid_alive(script_pid)  # killed: the script would have slept another 60 s
    assert any("train_loss:nan" in line for line in result.error_tail)


async def test_silent_run_is_killed_as_hung_with_its_children(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, HANGS, hang_timeout_s=1.0)
    handle = runner.start(spec)
    assert wait_for(lambda: (spec.cwd / "child.pid").exists() and (spec.cwd / "child.pid").read_text())
    child = int((spec.cwd / "child.pid").read_text())
    try:
        started = time.monotonic()
        result = await watch_run(handle, spec, **FAST)
        assert result.outcome is Outcome.HUNG
        assert time.monotonic() - started >= 1.0  # not before the hang timeout
        assert group_gone(handle.pgid)
        assert wait_for(lambda: not pid_alive(child))  # the child would have slept another 60 s
    finally:
        kill_quietly(child)


async def test_overall_timeout(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, CHATTY, timeout_s=1.5, hang_timeout_s=5.0)
    handle = runner.start(spec)
    result = await watch_run(handle, spec, **FAST)
    assert result.outcome is Outcome.TIMED_OUT
    assert result.wall_time_s >= 1.5  # not before the timeout; the script would have printed for a minute
    assert result.steps is not None and result.steps >= 1
    assert group_gone(handle.pgid)


async def test_cancel_stops_a_process_that_ignores_sigterm(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, STUBBORN)
    handle = runner.start(spec)
    watcher = asyncio.create_task(watch_run(handle, spec, **FAST))
    await until(lambda: (spec.cwd / "ready").exists(), "the script to ignore SIGTERM")
    await asyncio.to_thread(handle.cancel, 0.5)
    assert group_gone(handle.pgid)  # only SIGKILL can have ended it
    result = await asyncio.wait_for(watcher, HANG_GUARD_S)
    assert result.outcome is Outcome.CANCELLED
    assert (spec.run_dir / "cancelled").exists()


async def test_watcher_sees_a_cancel_from_another_process(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, CHATTY)
    handle = runner.start(spec)
    watcher = asyncio.create_task(watch_run(handle, spec, **FAST))
    await until(lambda: "step:" in _output(spec), "the first line")
    code = (
        "import sys; from pathlib import Path; from copilot.core.runs import LocalRunner; "
        "LocalRunner().attach(Path(sys.argv[1])).cancel(grace_s=1.0)"
    )
    await asyncio.to_thread(subprocess.run, [PYTHON, "-c", code, str(spec.run_dir)], check=True, timeout=30)
    result = await asyncio.wait_for(watcher, HANG_GUARD_S)
    assert result.outcome is Outcome.CANCELLED and group_gone(handle.pgid)


async def test_stopping_the_watcher_leaves_the_run_alone(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, CHATTY)
    handle = runner.start(spec)
    watcher = asyncio.create_task(watch_run(handle, spec, **FAST))
    await until(lambda: "step:" in _output(spec), "the first line")
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher
    assert handle.is_alive()
    handle.kill(grace_s=1.0)
    assert group_gone(handle.pgid)


@pytest.mark.parametrize(("wall_time_s", "train_time_ms", "suspect"), [
    (0.177, 250.0, False),  # a 0.3 s run SLURM ended at the target: its EndTime is in whole seconds
    (60.0, 61_000.0, False),  # within 2 % + 0.5 s
    (60.0, 62_000.0, True),
    (1.0, 10_000.0, True),  # the lying timer below
    (0.0, 600.0, True),
    (5.0, None, False),
])
def test_a_timer_is_doubted_only_beyond_the_clocks_slack(wall_time_s: float, train_time_ms: float | None,
                                                         suspect: bool) -> None:
    result = RunResult(run_id="r-1", outcome=Outcome.REACHED_TARGET, reached_target=True, time_to_target_ms=None,
                       final_val_loss=3.2, best_val_loss=3.2, train_time_ms=train_time_ms, wall_time_s=wall_time_s,
                       exit_code=0, steps=30)
    assert result.timer_suspect is suspect
    assert (timer_gap_flag(wall_time_s, train_time_ms) is not None and wall_time_s > 0) is (suspect and wall_time_s > 0)


async def test_lying_timer_is_flagged(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, LYING_TIMER)
    result = await watch_run(runner.start(spec), spec, **FAST)
    assert result.outcome is Outcome.REACHED_TARGET and result.time_to_target_ms == 10000.0
    assert result.timer_suspect and result.timer_gap is not None and result.timer_gap < 1.0
    assert result.to_event_fields()["timer_suspect"] is True


def test_kill_never_signals_a_reused_process_group(tmp_path: Path) -> None:
    from copilot.core.runs import LocalRunHandle

    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        stale = LocalRunHandle("r-old", tmp_path, pid=other.pid, pgid=other.pid, started_at=0.0, start_ticks=1)
        assert not stale.is_alive()  # same pid, different start time: not our run
        stale.kill(grace_s=0.2)
        assert other.poll() is None, "kill signalled a process group that is not the run's"
    finally:
        other.kill()
        other.wait()


# -- re-attach -------------------------------------------------------------------------------------------


async def test_reattach_from_a_fresh_runner(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, SLOW_REACHES)
    handle = runner.start(spec)
    pgid = handle.pgid
    del handle  # the UI's handle is gone; only the run folder remains
    await until(lambda: "step:0/" in _output(spec), "the first line")

    again = LocalRunner().attach(spec.run_dir)
    assert again.pid == pgid and again.is_alive()
    stored = load_spec(spec.run_dir)
    assert stored.target_val_loss == spec.target_val_loss and stored.command == spec.command
    points: list[MetricPoint] = []
    result = await watch_run(again, stored, on_metric=points.append, **FAST)
    assert result.outcome is Outcome.REACHED_TARGET and result.time_to_target_ms == 200.0
    assert result.exit_code == 0 and [p.step for p in points] == [0, 10, 20]
    assert not again.is_alive()

    # A watcher that continues from an offset reports only the new lines, yet the result covers the run.
    log = (spec.run_dir / OUTPUT_LOG).read_bytes()
    offset = log.index(b"\n") + 1
    later: list[MetricPoint] = []
    replay = await watch_run(LocalRunner().attach(spec.run_dir), stored, on_metric=later.append, from_offset=offset, **FAST)
    assert [p.step for p in later] == [10, 20]
    assert replay.outcome is Outcome.REACHED_TARGET and replay.time_to_target_ms == 200.0
    assert replay.final_val_loss == result.final_val_loss and replay.steps == result.steps


async def test_run_survives_the_process_that_started_it(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, SLOW_REACHES)
    launcher = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from copilot.core.runs import LocalRunner, RunSpec\n"
        "d = json.loads(sys.argv[1])\n"
        "spec = RunSpec(d['run_id'], d['command'], Path(d['cwd']), Path(d['run_dir']), {}, d['target'])\n"
        "print(LocalRunner().start(spec).pid)\n"
    )
    arg = json.dumps(
        dict(run_id=spec.run_id, command=spec.command, cwd=str(spec.cwd), run_dir=str(spec.run_dir), target=3.28)
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", launcher, arg], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.strip())
    try:
        handle = LocalRunner().attach(spec.run_dir)
        assert handle.pid == pid
        assert handle.is_alive(), "the run died with the process that started it"
        result = await watch_run(handle, load_spec(spec.run_dir), **FAST)
        assert result.outcome is Outcome.REACHED_TARGET and result.exit_code == 0
        assert (spec.run_dir / EXIT_CODE).read_text().strip() == "0"
        assert not handle.is_alive()
    finally:
        kill_quietly(pid)


async def test_attach_after_the_run_ended_classifies_from_the_files(tmp_path: Path, runner: LocalRunner) -> None:
    spec = make_spec(tmp_path, CRASHES)
    handle = runner.start(spec)
    assert wait_for(lambda: (spec.run_dir / EXIT_CODE).exists())
    # The UI comes back long after the end: the run started 100 s ago and ended 0.25 s after its start.
    info = json.loads((spec.run_dir / RUN_JSON).read_text())
    info["started_at"] -= 100.0
    (spec.run_dir / RUN_JSON).write_text(json.dumps(info))
    ended = info["started_at"] + 0.25
    os.utime(spec.run_dir / EXIT_CODE, (ended, ended))
    result = await watch_run(LocalRunner().attach(spec.run_dir), spec, **FAST)
    assert result.outcome is Outcome.CRASHED and result.exit_code == 1
    assert result.error_tail[-1].startswith("RuntimeError")
    assert result.wall_time_s == pytest.approx(0.25, abs=0.01)  # run.json's start to the exit_code file, not to now
    handle.kill(grace_s=0.2)


async def test_the_watcher_sleeps_between_polls(tmp_path: Path, runner: LocalRunner) -> None:
    # A watcher that spun instead of sleeping would poll thousands of times; load only lowers the count.
    # (What watching costs in CPU is a benchmark's question, not a test's.)
    spec = make_spec(tmp_path, SLOW_REACHES)
    handle = runner.start(spec)
    polls: list[float] = []
    started = time.monotonic()
    result = await watch_run(handle, spec, poll_s=0.1, on_poll=lambda: polls.append(time.monotonic()))
    elapsed = time.monotonic() - started
    assert result.outcome is Outcome.REACHED_TARGET
    assert 1 <= len(polls) <= elapsed / 0.1 + 2
    assert all(later - earlier >= 0.09 for earlier, later in zip(polls, polls[1:]))


def _output(spec) -> str:
    try:
        return (spec.run_dir / OUTPUT_LOG).read_text(errors="replace")
    except OSError:
        return ""
