"""Runs: launch a training command detached, watch its log, classify how it ended.

A run lives in its own folder (`run_dir`), which is the whole contract between a runner and the watcher:

    run.json     what was started: pid, process group, command, cwd, started_at (unix s), host, target, limits
    output.log   stdout + stderr of the command (a remote runner mirrors the remote log here)
    exit_code    the command's exit status, written by a wrapper shell when the command ends, even if the
                 process that started the run is long gone
    cancelled    marker: someone asked for the run to stop (written before the signals go out)
    result.json  the RunResult once a watcher has classified the run

`watch_run` uses only these files and the RunHandle methods, so it works for any runner (local or SSH), for a
run started by this process, and for a run re-attached after the UI died.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable

from copilot.core.errors import RunError
from copilot.core.logparse import LogParser
from copilot.core.metrics import MetricPoint, time_to_target_ms

RUN_JSON = "run.json"
OUTPUT_LOG = "output.log"
EXIT_CODE = "exit_code"
CANCELLED = "cancelled"
RESULT_JSON = "result.json"

READ_CHUNK = 1 << 20  # bytes per read while tailing; a replay of a long log yields to the loop between chunks
ERROR_TAIL_LINES = 40
SHORT_TAIL_LINES = 10

# Runs the command, then records its exit status next to the log. `$1` is the run folder (absolute), the rest
# is the command. The shell stays the process-group leader, so killing the group stops everything it started.
_WRAPPER = (
    'd="$1"; shift; "$@"; c=$?; '
    'printf "%s\\n" "$c" > "$d/exit_code.tmp" && mv -f "$d/exit_code.tmp" "$d/exit_code"; '
    'exit "$c"'
)


class Outcome(str, Enum):
    REACHED_TARGET = "reached_target"
    ABOVE_TARGET = "above_target"
    CRASHED = "crashed"
    DIVERGED = "diverged"
    HUNG = "hung"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


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

    @property
    def timer_suspect(self) -> bool:
        """The script claims more training time than the process lived: its timer cannot be trusted."""
        return self.timer_gap is not None and self.timer_gap < 1.0

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


def new_run_id() -> str:
    """A run id that sorts by start time (UTC), e.g. "r-20261126-171500-ab12"."""
    return datetime.now(timezone.utc).strftime("r-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


# -- handles ---------------------------------------------------------------------------------------------


class RunHandle(ABC):
    """A started run. Runners (local, ssh) implement is_alive, exit_code and kill."""

    run_id: str
    run_dir: Path
    started_at: float  # unix seconds, taken by the runner just before the process started

    @abstractmethod
    def is_alive(self) -> bool: ...

    @abstractmethod
    def exit_code(self) -> int | None:
        """The command's exit status once known (None while running, or when it was killed by a signal
        and nobody saw the status)."""

    @abstractmethod
    def kill(self, grace_s: float = 5.0) -> None:
        """Stop the run and everything it started: SIGTERM, then SIGKILL after grace_s. Blocks until dead."""

    def cancel(self, grace_s: float = 5.0) -> None:
        """Stop the run on the user's request; watchers see the marker and report CANCELLED."""
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


def read_exit_code(run_dir: Path) -> int | None:
    try:
        return int((run_dir / EXIT_CODE).read_text().strip())
    except (OSError, ValueError):
        return None


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) from /proc, or None where /proc is absent."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        rest = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
        return rest[0], int(rest[2]), int(rest[19])
    except (OSError, ValueError, IndexError):  # gone, or exiting while we read
        return None


def _pid_running(pid: int, start_ticks: int | None) -> bool:
    """True if pid is a live (not zombie) process and, where known, the same one we started (pid reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    if stat is None:
        return not Path("/proc/self/stat").exists()  # no /proc at all: trust kill(0)
    state, _, ticks = stat
    if state in ("Z", "X"):
        return False
    return start_ticks is None or ticks == start_ticks


def group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) pids of a process group; None where /proc cannot tell."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    members = group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalRunHandle(RunHandle):
    def __init__(
        self,
        run_id: str,
        run_dir: Path,
        pid: int,
        pgid: int,
        started_at: float,
        start_ticks: int | None = None,
        proc: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.pid = pid
        self.pgid = pgid
        self.started_at = started_at
        self.start_ticks = start_ticks
        self._proc = proc

    def is_alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        if (self.run_dir / EXIT_CODE).exists():
            return False
        return _pid_running(self.pid, self.start_ticks)

    def exit_code(self) -> int | None:
        code = read_exit_code(self.run_dir)
        if code is None and self._proc is not None:
            return self._proc.poll()  # negative: killed by that signal
        return code

    def kill(self, grace_s: float = 5.0) -> None:
        if not self._group_is_ours():
            return
        self._signal(signal.SIGTERM)
        if not self._wait_gone(grace_s):
            self._signal(signal.SIGKILL)
            self._wait_gone(5.0)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass

    def _group_is_ours(self) -> bool:
        """False when the leader's pid now belongs to another process (the run ended long ago and the number
        was reused): then the group number is someone else's and must not be signalled."""
        if self.start_ticks is None:
            return True
        stat = _proc_stat(self.pgid)
        return stat is None or stat[2] == self.start_ticks

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            raise RunError(f"not allowed to signal run {self.run_id} (process group {self.pgid}): {exc}") from exc

    def _wait_gone(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc is not None:
                self._proc.poll()  # reap our own child so it does not linger as a zombie
            if not group_alive(self.pgid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


# -- the local runner ------------------------------------------------------------------------------------


def _resolve_executable(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    program = command[0]
    if os.sep in program:
        path = Path(program) if os.path.isabs(program) else cwd / program
        if not path.exists():
            raise RunError(f"cannot start run: {path} does not exist")
        return
    if shutil.which(program, path=env.get("PATH")) is None:
        raise RunError(f"cannot start run: command {program!r} not found on PATH; install it or give a full path")


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


class LocalRunner:
    """Starts runs as detached process groups on this machine; re-attaches to them from their folder."""

    name = "local"

    def start(self, spec: RunSpec) -> LocalRunHandle:
        if not spec.command:
            raise RunError("cannot start run: the command is empty")
        cwd = Path(spec.cwd)
        if not cwd.is_dir():
            raise RunError(f"cannot start run: working directory {cwd} does not exist")
        run_dir = Path(spec.run_dir).resolve()
        if (run_dir / RUN_JSON).exists():
            raise RunError(f"run folder {run_dir} already holds a run; use a new run id")
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        env["SPEEDCOPILOT_RUN_ID"] = spec.run_id
        env["SPEEDCOPILOT_RUN_DIR"] = str(run_dir)
        _resolve_executable(spec.command, cwd, env)
        argv = ["/bin/sh", "-c", _WRAPPER, "sh", str(run_dir), *spec.command]
        with open(run_dir / OUTPUT_LOG, "ab") as log:
            started_at = time.time()
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise RunError(f"cannot start run {spec.run_id}: {exc}") from exc
        stat = _proc_stat(proc.pid)
        info = {
            "run_id": spec.run_id,
            "runner": self.name,
            "pid": proc.pid,
            "pgid": proc.pid,  # start_new_session: the wrapper leads its own session and group
            "start_ticks": stat[2] if stat else None,
            "command": list(spec.command),
            "cwd": str(cwd.resolve()),
            "started_at": started_at,
            "host": socket.gethostname(),
            "target_val_loss": spec.target_val_loss,
            "timeout_s": spec.timeout_s,
            "hang_timeout_s": spec.hang_timeout_s,
        }
        _write_json_atomic(run_dir / RUN_JSON, info)
        return LocalRunHandle(spec.run_id, run_dir, proc.pid, proc.pid, started_at, info["start_ticks"], proc)

    def attach(self, run_dir: Path) -> LocalRunHandle:
        info = read_run_info(run_dir)
        if info.get("runner", self.name) != self.name:
            raise RunError(f"run in {run_dir} was started by the {info['runner']!r} runner, not {self.name!r}")
        try:
            return LocalRunHandle(
                run_id=str(info["run_id"]),
                run_dir=Path(run_dir).resolve(),
                pid=int(info["pid"]),
                pgid=int(info["pgid"]),
                started_at=float(info["started_at"]),
                start_ticks=info.get("start_ticks"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{run_dir / RUN_JSON} is incomplete ({exc}); the run cannot be re-attached") from exc


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
) -> Outcome:
    """How a run ended. Precedence: cancelled > what the watcher killed it for (diverged, hung, timed out) >
    a NaN/inf loss > a non-zero or unknown exit status > reached target or not."""
    if cancelled:
        return Outcome.CANCELLED
    if killed_for is not None:
        return killed_for
    if nan_seen:
        return Outcome.DIVERGED
    if exit_code != 0:
        return Outcome.CRASHED
    return Outcome.REACHED_TARGET if reached_target else Outcome.ABOVE_TARGET


def error_tail(lines: Iterable[str], outcome: Outcome) -> list[str]:
    """The lines worth showing for an outcome: from the last traceback on for a crash, else the last few."""
    if outcome in (Outcome.REACHED_TARGET, Outcome.ABOVE_TARGET):
        return []
    lines = list(lines)
    if outcome is Outcome.CRASHED:
        for index in range(len(lines) - 1, -1, -1):
            if "Traceback (most recent call last)" in lines[index]:
                return lines[index:][-ERROR_TAIL_LINES:]
        return lines[-ERROR_TAIL_LINES // 2 :]
    return lines[-SHORT_TAIL_LINES:]


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
        peak_memory_mib=parser.peak_memory[0] if parser.peak_memory else None,
        timer_gap=gap,
    )


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
            data = self._fh.read(READ_CHUNK)
            if not data:
                return got
            got = True
            self._emit(self.parser.feed(self._decoder.decode(data), self.on_line))
            if len(data) == READ_CHUNK:
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


async def _kill(handle: RunHandle, grace_s: float) -> None:
    await asyncio.to_thread(handle.kill, grace_s)


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
) -> RunResult:
    """Tail the run's output.log until the run ends; stop it on divergence, hang or timeout; classify it.

    Callbacks get the lines and points after from_offset (bytes); what came before is parsed silently so the
    result covers the whole run. Cancelling the task that awaits this stops the watching, never the run.
    The result is also written to run_dir/result.json unless save_result is False.
    """
    parser = LogParser()
    tail = _Tail(handle.run_dir / OUTPUT_LOG, parser, on_line, on_metric, from_offset)
    killed_for: Outcome | None = None
    cancelled = False
    last_output = time.monotonic()
    saw_alive = False
    try:
        while True:
            if await tail.read():
                last_output = time.monotonic()
            alive = handle.is_alive()
            saw_alive = saw_alive or alive
            if parser.nan_seen:
                killed_for = Outcome.DIVERGED
            elif is_cancelled(handle.run_dir):
                cancelled = True
            elif not alive:
                break
            elif spec.timeout_s is not None and time.time() - handle.started_at > spec.timeout_s:
                killed_for = Outcome.TIMED_OUT
            elif spec.hang_timeout_s is not None and time.monotonic() - last_output > spec.hang_timeout_s:
                killed_for = Outcome.HUNG
            if killed_for is not None or cancelled:
                await _kill(handle, kill_grace_s)
                break
            await asyncio.sleep(poll_s)
        await tail.read()
        tail.finish()
    finally:
        tail.close()
    ended = handle.ended_at()
    if ended is None:
        # Killed (no exit status written): it ended now, or, if it was already dead when we came, at its
        # last output.
        ended = time.time() if saw_alive else _mtime(handle.run_dir / OUTPUT_LOG) or time.time()
    wall_time_s = max(0.0, ended - handle.started_at)
    exit_code = handle.exit_code()
    outcome = classify(
        exit_code=exit_code,
        reached_target=reached_target(parser.points, spec.target_val_loss),
        nan_seen=parser.nan_seen,
        cancelled=cancelled or is_cancelled(handle.run_dir),
        killed_for=killed_for,
    )
    result = summarize(handle.run_id, parser, spec.target_val_loss, outcome, exit_code, wall_time_s)
    if save_result:
        write_result(handle.run_dir, result)
    return result
