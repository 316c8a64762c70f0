"""The local runner: a training command as a detached process group on this machine, re-attachable."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from copilot.core.errors import RunError
from copilot.core.runs.env import run_environment
from copilot.core.runs.base import (
    EXIT_CODE,
    OUTPUT_LOG,
    RUN_JSON,
    RunHandle,
    RunSpec,
    _write_json_atomic,
    read_exit_code,
    read_run_info,
)

# Runs the command, then records its exit status next to the log. `$1` is the run folder (absolute), the rest
# is the command. The shell stays the process-group leader, so killing the group stops everything it started.
# A full or read-only disk refuses the exit_code file: the wrapper tries again each second for up to 15 min, so
# the status lands once space is freed and a later resume records the true end (not "crashed, status unknown").
_WRAPPER = (
    'd="$1"; shift; "$@"; c=$?; i=0; '
    'until printf "%s\\n" "$c" > "$d/exit_code.tmp" && mv -f "$d/exit_code.tmp" "$d/exit_code"; do '
    'i=$((i+1)); [ "$i" -ge 900 ] && break; sleep 1; done 2>/dev/null; '
    'exit "$c"'
)


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

    def terminate(self) -> None:
        if self._group_is_ours():
            self._signal(signal.SIGTERM)
        self._reap()

    def force_kill(self) -> None:
        if self._group_is_ours():
            self._signal(signal.SIGKILL)
        self._reap()

    def any_alive(self) -> bool:
        self._reap()
        return self.is_alive() or (self._group_is_ours() and group_alive(self.pgid))

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.poll()  # our own child must not linger as a zombie

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


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_slots(count: int, cpus: list[int] | None = None) -> list[tuple[int, ...]]:
    """`count` groups of the CPUs this process may use, one per run that may go at once: disjoint when there
    are at least `count` CPUs (the first groups get one more when they do not divide evenly), else one CPU
    each, round robin, so runs share CPUs."""
    available = sorted(cpus if cpus is not None else _usable_cpus())
    if count < 1 or not available:
        raise RunError(f"cannot split {len(available)} CPUs into {count} run slots")
    if len(available) < count:
        return [(available[i % len(available)],) for i in range(count)]
    size, extra = divmod(len(available), count)
    groups, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        groups.append(tuple(available[start:end]))
        start = end
    return groups


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API (macOS): every CPU
        return list(range(os.cpu_count() or 1))


class LocalRunner:
    """Starts runs as detached process groups on this machine; re-attaches to them from their folder.

    With `slots=K` (parallel search: K runs at once), every run is pinned to one of K groups of this machine's
    CPUs (`cpu_slots`; `taskset`, else sched_setaffinity right after the start) and its OpenMP/BLAS thread
    variables are set to the size of its group, so K runs share the cores instead of fighting over all of
    them; a new run takes the slot with the fewest live runs. Every run of such a session, the baseline
    included, trains on one slot, so their times compare with each other (not with a run that had the whole
    machine).
    """

    name = "local"

    def __init__(self, slots: int | None = None, cpus: list[int] | None = None) -> None:
        self.slots: list[tuple[int, ...]] | None = None
        self._busy: dict[str, tuple[int, LocalRunHandle]] = {}  # run id -> (slot, handle)
        self.set_slots(slots, cpus)

    def set_slots(self, slots: int | None, cpus: list[int] | None = None) -> None:
        """Pin the runs started from now on to `slots` CPU groups (None or 1: no pinning, the whole machine)."""
        self.slots = cpu_slots(slots, cpus) if slots is not None and slots > 1 else None

    def _take_slot(self) -> int:
        assert self.slots is not None
        for run_id, (_, handle) in list(self._busy.items()):
            if not handle.any_alive():
                del self._busy[run_id]
        load = [0] * len(self.slots)
        for slot, _ in self._busy.values():
            if slot < len(load):
                load[slot] += 1
        return min(range(len(self.slots)), key=lambda i: (load[i], i))

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
        env = run_environment(spec.env)  # the allow-listed environment, never this process's secrets
        env["SPEEDCOPILOT_RUN_ID"] = spec.run_id
        env["SPEEDCOPILOT_RUN_DIR"] = str(run_dir)
        _resolve_executable(spec.command, cwd, env)
        argv = ["/bin/sh", "-c", _WRAPPER, "sh", str(run_dir), *spec.command]
        slot, cpus, pinned = None, None, False
        if self.slots is not None:
            slot = self._take_slot()
            cpus = self.slots[slot]
            env.update({name: str(len(cpus)) for name in THREAD_VARIABLES})
            taskset = shutil.which("taskset")
            if taskset:  # exec's the wrapper: pid and process group stay the wrapper's
                argv = [taskset, "-c", ",".join(map(str, cpus)), *argv]
                pinned = True
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
        if cpus is not None and not pinned:
            try:  # no taskset: pin the wrapper now; what it forks from now on inherits it
                os.sched_setaffinity(proc.pid, cpus)
            except (AttributeError, OSError):
                pass
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
            "stop_at_target": spec.stop_at_target,
        }
        if cpus is not None:
            info.update({"cpu_slot": slot, "cpus": list(cpus)})
        handle = LocalRunHandle(spec.run_id, run_dir, proc.pid, proc.pid, started_at, info["start_ticks"], proc)
        try:
            _write_json_atomic(run_dir / RUN_JSON, info)
        except OSError:
            # without run.json nobody could re-attach to the run or record its end: it must not go on unseen
            handle.kill(grace_s=1.0)
            raise
        if slot is not None:
            self._busy[spec.run_id] = (slot, handle)
        return handle

    def attach(self, run_dir: Path) -> LocalRunHandle:
        info = read_run_info(run_dir)
        if info.get("runner", self.name) != self.name:
            raise RunError(f"run in {run_dir} was started by the {info['runner']!r} runner, not {self.name!r}")
        try:
            handle = LocalRunHandle(
                run_id=str(info["run_id"]),
                run_dir=Path(run_dir).resolve(),
                pid=int(info["pid"]),
                pgid=int(info["pgid"]),
                started_at=float(info["started_at"]),
                start_ticks=info.get("start_ticks"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{run_dir / RUN_JSON} is incomplete ({exc}); the run cannot be re-attached") from exc
        slot = info.get("cpu_slot")
        if isinstance(slot, int) and slot >= 0:
            self._busy[handle.run_id] = (slot, handle)  # a re-attached run keeps its slot busy
        return handle


