"""Every run's end is recorded, whichever driver started it and whichever opens the session next.

Each driver (`run --session`, `auto`, the app under `start --resume` in a real terminal) trains a real micro run
and is killed with SIGKILL at one of three points: right after run_started, after the first metric, or after the
training has ended but before the driver could record it (stopped with SIGSTOP, then killed). The session is
then opened by `run --session`, `auto --resume`, `start --resume` or `sessions repair`, all through the same
re-attach code; the run's end must be recorded exactly once, by that opener, with the status the run really had
and every metric line of its output.log as an event.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from copilot.core.llm.providers import OracleProvider
from copilot.core.session import Session
from copilot.core.session.events import EVENTS_FILE, read_events
from tests.support.faults import (
    DEADLINE_S,
    EXE,
    Tmux,
    cli,
    cli_env,
    end_every_run,
    group_gone,
    has_event,
    lock_holder,
    run_dirs,
    run_group,
    spawn,
    wait_for,
)
from tests.support.reliability import metric_lines, record_case

pytestmark = pytest.mark.slow

CASES = [  # (driver killed, when, who opens the session next): every driver at every point, every opener twice+
    ("run", "after_run_started", "repair"),
    ("run", "after_first_metric", "app"),
    ("run", "after_training_ended", "auto"),
    ("auto", "after_run_started", "run"),
    ("auto", "after_first_metric", "auto"),
    ("auto", "after_training_ended", "repair"),
    ("app", "after_run_started", "run"),
    ("app", "after_first_metric", "auto"),
    ("app", "after_training_ended", "app"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from copilot.core.tracks.microdata import prepare_micro_data

    folder = tmp_path_factory.mktemp("micro-data")
    prepare_micro_data(folder, size="small")
    return folder


@dataclass
class Driver:
    kind: str
    session_dir: Path
    pid: int
    proc: subprocess.Popen[bytes] | None = None


def _micro_session(sessions: Path, data: Path) -> Path:
    from copilot.core.tracks.micro import MicroTrack

    track = MicroTrack(data_dir=data)
    session = Session.create(sessions, track, 0, OracleProvider(track, 0))
    session.close_now(reason="user")
    session.workspace.repo.close()
    return session.dir


def _in_tmux(tmux: Tmux, env: dict[str, str], *args: str, done: Path) -> None:
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k in _TMUX_ENV or k.startswith("MICRO_"))
    command = f"env {exports} {shlex.quote(EXE)} {' '.join(shlex.quote(a) for a in args)}; echo $? > {done}"
    tmux.start(command)


_TMUX_ENV = ("PATH", "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "SPEEDCOPILOT_DATA_DIR",
             "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "COLUMNS")


def start_driver(kind: str, sessions: Path, data: Path, env: dict[str, str], tmp_path: Path, tmux: Tmux) -> Driver:
    if kind == "run":
        session_dir = _micro_session(sessions, data)
        proc = spawn("run", "--session", session_dir.name, "--quiet", "--session-dir", str(sessions), env=env,
                     out=tmp_path / "driver.out")
        return Driver(kind, session_dir, proc.pid, proc)
    if kind == "auto":
        proc = spawn("auto", "--record", "0", "--track", "micro", "--provider", "oracle", "--nodes", "1",
                     "--session-dir", str(sessions), env=env, out=tmp_path / "driver.out")
        found = wait_for(lambda: [p for p in sessions.glob("*/events.jsonl")], "the agent's session")
        return Driver(kind, found[0].parent, proc.pid, proc)
    session_dir = _micro_session(sessions, data)
    _in_tmux(tmux, env, "start", "--resume", session_dir.name, "--session-dir", str(sessions),
             done=tmp_path / "driver.done")
    tmux.wait_for("offline oracle")
    tmux("send-keys", "r")
    pid = wait_for(lambda: lock_holder(session_dir), "the app to hold the session")
    return Driver(kind, session_dir, pid)


def kill_driver(driver: Driver, when: str) -> Path:
    """SIGKILL the driver at that point of its run; returns the run's folder."""
    session_dir = driver.session_dir
    wait_for(lambda: has_event(session_dir, "run_started"), "run_started")
    if when != "after_run_started":
        wait_for(lambda: has_event(session_dir, "metric"), "the first metric event")
    if when == "after_training_ended":
        os.kill(driver.pid, signal.SIGSTOP)  # the driver cannot record what happens next
        run_dir = run_dirs(session_dir)[0]
        wait_for(lambda: (run_dir / "exit_code").exists(), "the training to end")
    os.kill(driver.pid, signal.SIGKILL)
    if driver.proc is not None:
        driver.proc.wait(timeout=DEADLINE_S)
    else:
        wait_for(lambda: not _alive(driver.pid), "the app to be gone")
    [run_dir] = run_dirs(session_dir)
    assert not has_event(session_dir, "run_finished"), "the driver recorded the end before it was killed"
    return run_dir


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _wait_showing_screen(tmux: Tmux, predicate: Callable[[], object], what: str) -> None:
    """wait_for, with the app's screen in the failure: what it showed instead is the first clue."""
    try:
        wait_for(predicate, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the screen was:\n{tmux.screen()}") from None


def open_next(opener: str, session_dir: Path, run_dir: Path, env: dict[str, str], tmp_path: Path,
              tmux: Tmux) -> str:
    """Open the session with `opener` until the run's end is recorded; returns what it printed."""
    sessions, sid = str(session_dir.parent), session_dir.name
    if opener == "run":
        result = cli("run", "--session", sid, "--quiet", "--session-dir", sessions, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "above_target" in result.stdout
        return result.stdout
    if opener == "auto":
        result = cli("auto", "--resume", sid, "--budget-accel-seconds", "0.001", "--session-dir", sessions, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout
    if opener == "repair":
        printed = ""
        if not (run_dir / "exit_code").exists():  # still training: repair says so, and --wait follows it
            first = cli("sessions", "repair", sid, "--session-dir", sessions, env=env)
            assert first.returncode == 0, first.stdout + first.stderr
            if "still training" in first.stdout:
                assert f"sessions repair {sid} --wait" in first.stdout
                assert not has_event(session_dir, "run_finished")
            printed = first.stdout
            if has_event(session_dir, "run_finished"):  # it ended between the check and the repair
                return printed
        result = cli("sessions", "repair", sid, "--wait", "--session-dir", sessions, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return printed + result.stdout
    done = tmp_path / "opener.done"
    _in_tmux(tmux, env, "start", "--resume", sid, "--session-dir", sessions, done=done)
    _wait_showing_screen(tmux, lambda: has_event(session_dir, "run_finished", run_id=run_dir.name),
                         "the app to record the end")
    tmux.wait_for("offline oracle")
    tmux("send-keys", "q")
    _wait_showing_screen(tmux, done.exists, "the app to quit")
    assert done.read_text().strip() == "0", tmux.screen()
    return tmux.screen()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (the app needs a terminal)")
@pytest.mark.parametrize(("driver_kind", "when", "opener"), CASES)
def test_the_end_of_a_run_whose_driver_was_killed_is_recorded_by_whoever_opens_the_session(
        tmp_path: Path, data: Path, driver_kind: str, when: str, opener: str) -> None:
    sessions = tmp_path / "sessions"
    env = cli_env(data)
    tmux = Tmux(tmp_path / "tmux.sock")
    driver: Driver | None = None
    try:
        driver = start_driver(driver_kind, sessions, data, env, tmp_path, tmux)
        run_dir = kill_driver(driver, when)
        tmux.close()  # the killed app's terminal
        printed = open_next(opener, driver.session_dir, run_dir, env, tmp_path, tmux)
        wait_for(lambda: group_gone(run_group(run_dir)), "no process of the run left")
        _check_recorded_once(driver.session_dir, run_dir, opener, printed, f"{driver_kind} killed {when}, "
                                                                            f"opened by {opener}")
    finally:
        if driver is not None and driver.proc is not None and driver.proc.poll() is None:
            driver.proc.kill()
            driver.proc.wait()
        tmux.close()
        end_every_run(tmp_path)


def _check_recorded_once(session_dir: Path, run_dir: Path, opener: str, printed: str, case: str) -> None:
    log = read_events(session_dir / EVENTS_FILE)
    assert log.problems == [], log.problems
    finished = [e.body for e in log.events if e.type == "run_finished" and e.get("run_id") == run_dir.name]
    assert len(finished) == 1, finished
    assert finished[0].recorded_by == f"resume by {opener}"
    assert finished[0].exit_code == int((run_dir / "exit_code").read_text()) == 0
    assert finished[0].outcome == "above_target"
    logged = [(e.get("step"), e.get("val_loss"), e.get("train_loss")) for e in log.events
              if e.type == "metric" and e.get("run_id") == run_dir.name]
    lines = metric_lines(run_dir)
    assert logged == lines and len(lines) == 10  # 6 steps: 6 train lines and 4 validations
    assert run_dirs(session_dir) == [run_dir]  # the opener re-attached: it trained nothing new
    if opener in ("repair", "auto"):
        assert f"run {run_dir.name} ended: above_target, recorded (resume by {opener})" in printed
    elif opener == "run":
        assert "above_target" in printed
    record_case(case, events_checked=len(log.events) + len(lines), events_lost=len(lines) - len(
        [m for m in lines if m in logged]))
