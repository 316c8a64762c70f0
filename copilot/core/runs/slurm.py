"""Runs as SLURM batch jobs, with the same run-folder contract as the local runner (base.py).

Target: `slurm://[partition][?gpus=8&time=00:30:00&account=…&cpus=…&mem=…&qos=…]`. Only the SLURM client
tools are used (sbatch, scontrol, scancel; sacct only where accounting storage exists), so whatever cluster
the machine's slurm.conf (or SLURM_CONF) names is the one the runs go to.

The workspace and the run folder must be on a file system the compute nodes share (on one machine that is
trivially true): the job's stdout goes straight into `run_dir/output.log` and its wrapper writes the state
files next to it, so `watch_run` tails the log as it grows and no copying is needed.

How a run goes:
1. Submit: `run_dir/job.sh` is written and submitted with `sbatch --parsable --export=NONE` (job name = run
   id, `--output` = output.log, `--chdir` = the workspace, `--no-requeue`, options from the URL).
   run.json records the job id and the submit time (`queued_at`).
2. The job script clears the environment SLURM gives it (with --export=NONE SLURM loads the user's login
   environment), keeps what SLURM sets for the allocation (SLURM_*, GPU visibility), exports spec.env and
   the run's own variables, writes `started` (its mtime is the real start), runs the command and writes
   `exit_code`. It traps SIGTERM so it can still record the status of a cancelled command.
3. State: the `exit_code` file first; otherwise `scontrol show job` (cached for `state_poll_s`), which also
   tells how the scheduler ended a job (time limit, cancel, preemption, node failure, out of memory).
4. Cancel: `scancel --signal=TERM --full` (returns at once) and a detached escalation that sends
   `--signal=KILL --full` after the grace period, so kill() never blocks and the escalation survives the app.
5. `attach(run_dir)` reads the job id from run.json; any process can re-attach while the job runs or after.

Queue time and run time are separate: `queued_at` is the submit time, `started_at` the job's real start
(until then the handle is pending), `queue_time_s` their difference. watch_run's wall time (and so the
accelerator-seconds) runs from the real start.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, urlsplit

from copilot.core.errors import RunError
from copilot.core.runs.base import (
    EXIT_CODE,
    OUTPUT_LOG,
    RUN_JSON,
    Outcome,
    RunHandle,
    RunSpec,
    _write_json_atomic,
    read_exit_code,
    read_run_info,
)

RUNNER_NAME = "slurm"
JOB_SCRIPT = "job.sh"
STARTED = "started"
URL_OPTIONS = ("gpus", "time", "account", "cpus", "mem", "qos")
# Variables SLURM sets for the allocation itself (besides SLURM_* and SLURMD_*): the job keeps them, and
# SLURM's values win over spec.env's, which come from the submitting machine (or from an outer allocation).
DEVICE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARTITION = re.compile(r"^[A-Za-z0-9_.\-]+$")

PENDING_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                            "RESV_DEL_HOLD", "SUSPENDED"})
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING", "STOPPED"})
GONE = "GONE"  # the controller no longer knows the job (purged after MinJobAge) and no accounting says more
# How the scheduler ending a job maps to an outcome, and the line that says why.
SCHEDULER_OUTCOMES: dict[str, tuple[Outcome, str]] = {
    "TIMEOUT": (Outcome.TIMED_OUT, "SLURM stopped job {job} at its time limit ({limit})"),
    "DEADLINE": (Outcome.TIMED_OUT, "SLURM stopped job {job} at its deadline"),
    "CANCELLED": (Outcome.CANCELLED, "SLURM job {job} was cancelled (scancel)"),
    "PREEMPTED": (Outcome.CRASHED, "SLURM preempted job {job} for a higher-priority job; start the run again"),
    "NODE_FAIL": (Outcome.CRASHED, "SLURM job {job} ended because node {node} failed; start the run again"),
    "BOOT_FAIL": (Outcome.CRASHED, "SLURM job {job} never ran: node {node} failed to boot"),
    "OUT_OF_MEMORY": (Outcome.CRASHED, "SLURM killed job {job}: it ran out of memory (raise mem= in the runner URL)"),
    "FAILED": (Outcome.CRASHED, "SLURM job {job} failed ({reason}) without recording an exit status"),
}
_ALREADY_OVER = ("already completing or completed", "invalid job id", "job has already finished")
# scancel's exit status for ESLURM_ALREADY_DONE (2021, "Job/step already completing or completed"), which it
# exits with as its low byte and does not print unless verbose: seen for a job whose command had just ended
_ALREADY_DONE_STATUS = 2021 & 0xFF


def scancel_came_too_late(out: subprocess.CompletedProcess[str], command_ended: bool) -> bool:
    """Whether a failed scancel only says the job was over (or ending) anyway, which is what it was asked for."""
    if out.returncode == _ALREADY_DONE_STATUS or any(s in error_text(out).lower() for s in _ALREADY_OVER):
        return True
    return command_ended

# The job script. The environment SLURM gives the job is cleared except for what describes the allocation;
# then the run's variables are exported. {env} and {command} are generated, shell-quoted lines.
_JOB_SCRIPT = """#!/bin/sh
# speedcopilot run {run_id}: written and submitted by the SLURM runner (sbatch options: see run.json)
set -f
_sc_mv=$(command -v mv)
_sc_date=$(command -v date)
for _sc_name in $(export -p | while IFS= read -r _sc_line; do
    _sc_line=${{_sc_line#export }}; _sc_line=${{_sc_line#declare -x }}
    case $_sc_line in [A-Za-z_]*) printf '%s\\n' "${{_sc_line%%=*}}" ;; esac
  done); do
  case $_sc_name in
    SLURM_EXPORT_ENV|SLURM_GET_USER_ENV) unset "$_sc_name" ;;
    SLURM_*|SLURMD_*|{device_pattern}) ;;
    *) unset "$_sc_name" ;;
  esac
done
_sc_dir={run_dir}
_sc_put() {{
  if [ -n "$_sc_mv" ]; then
    printf '%s\\n' "$2" > "$_sc_dir/$1.tmp" && "$_sc_mv" -f "$_sc_dir/$1.tmp" "$_sc_dir/$1"
  else
    printf '%s\\n' "$2" > "$_sc_dir/$1"
  fi
}}
cd {cwd} || {{ echo "speedcopilot: cannot enter "{cwd}" on node $SLURMD_NODENAME"; _sc_put exit_code 127; exit 127; }}
unset OLDPWD PWD
{env}
_sc_put started "$(${{_sc_date:-false}} +%s.%N 2>/dev/null)"
trap ':' TERM INT HUP
{command}
_sc_code=$?
_sc_put exit_code "$_sc_code"
exit "$_sc_code"
"""

# Sent after the grace period of a kill: KILL to every process of the job, then end the job itself.
DEFAULT_KILL_GRACE_S = 5.0  # SIGTERM → SIGKILL, as the local runner
_ESCALATE = 'sleep "$1"; scancel --signal=KILL --full "$2" 2>/dev/null; scancel "$2" 2>/dev/null; exit 0'


# -- the target -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmTarget:
    partition: str | None = None
    gpus: int | None = None
    time: str | None = None
    account: str | None = None
    cpus: int | None = None
    mem: str | None = None
    qos: str | None = None

    @classmethod
    def parse(cls, url: str) -> "SlurmTarget":
        text = url.strip()
        if text == "slurm":
            text = "slurm://"
        parts = urlsplit(text)
        usage = "use slurm://[partition][?gpus=8&time=00:30:00&account=…&cpus=…&mem=…&qos=…]"
        if parts.scheme != "slurm":
            raise RunError(f"not a slurm target: {url!r}; {usage}")
        if parts.path not in ("", "/"):
            raise RunError(f"{url!r}: a slurm target names a partition, not a path; {usage}")
        partition = parts.netloc or None
        if partition is not None and not _PARTITION.match(partition):
            raise RunError(f"{url!r}: {partition!r} is not a partition name; {usage}")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(URL_OPTIONS))
        if unknown:
            raise RunError(f"{url!r}: unknown option {unknown[0]!r}; the options are {', '.join(URL_OPTIONS)}")
        values: dict[str, str] = {}
        for key, given in query.items():
            if len(given) > 1:
                raise RunError(f"{url!r}: {key} is given {len(given)} times; give it once")
            if not given[0].strip():
                raise RunError(f"{url!r}: {key} is empty; give a value or leave it out")
            values[key] = given[0].strip()
        return cls(partition=partition, gpus=_count(url, "gpus", values.get("gpus"), minimum=0),
                   time=values.get("time"), account=values.get("account"),
                   cpus=_count(url, "cpus", values.get("cpus"), minimum=1), mem=values.get("mem"),
                   qos=values.get("qos"))

    @property
    def url(self) -> str:
        query = [f"{key}={getattr(self, key)}" for key in URL_OPTIONS if getattr(self, key) is not None]
        return f"slurm://{self.partition or ''}" + (f"?{'&'.join(query)}" if query else "")

    def sbatch_options(self, timeout_s: float | None = None) -> list[str]:
        options = ["--nodes=1"]
        if self.partition:
            options.append(f"--partition={self.partition}")
        if self.gpus:
            options.append(f"--gpus={self.gpus}")
        if self.time:
            options.append(f"--time={self.time}")
        elif timeout_s is not None and timeout_s > 0:
            # the watcher's own timeout fires first; SLURM's limit is the backstop when no watcher is left
            options.append(f"--time={math.ceil(timeout_s / 60.0) + 1}")
        if self.account:
            options.append(f"--account={self.account}")
        if self.cpus:
            options.append(f"--cpus-per-task={self.cpus}")
        if self.mem:
            options.append(f"--mem={self.mem}")
        if self.qos:
            options.append(f"--qos={self.qos}")
        return options


def _count(url: str, key: str, value: str | None, minimum: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise RunError(f"{url!r}: {key} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise RunError(f"{url!r}: {key} must be at least {minimum}, got {number}")
    return number


# -- the SLURM tools --------------------------------------------------------------------------------------


class SlurmTools:
    """Runs the SLURM client commands with one environment (the one that names the cluster, e.g. SLURM_CONF)."""

    def __init__(self, env: Mapping[str, str] | None = None, timeout_s: float = 60.0) -> None:
        self._env = dict(env) if env is not None else None
        self.timeout_s = timeout_s

    @property
    def env(self) -> dict[str, str]:
        return dict(self._env) if self._env is not None else dict(os.environ)

    def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=self.env.get("PATH"))

    def run(self, *argv: str, timeout_s: float | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, check=False,
                                  stdin=subprocess.DEVNULL, timeout=timeout_s or self.timeout_s)
        except FileNotFoundError:
            raise RunError(f"SLURM is not installed here (no {argv[0]} on PATH); run speedcopilot on a login "
                           "node of the cluster, or install the SLURM client tools") from None
        except subprocess.TimeoutExpired:
            raise RunError(f"{argv[0]} did not answer within {timeout_s or self.timeout_s:.0f}s; "
                           "is the SLURM controller up? (check with `sinfo`)") from None

    def spawn(self, script: str, *args: str) -> None:
        """A detached shell (own session, no output) that outlives this process."""
        subprocess.Popen(["/bin/sh", "-c", script, "sh", *args], env=self.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


NO_CONFIG = ("SLURM has no configuration here (no slurm.conf, SLURM_CONF unset, no DNS SRV record for a "
             "configless cluster); run on a login node of the cluster, or set SLURM_CONF")


def error_text(out: subprocess.CompletedProcess[str]) -> str:
    """The tools' own error lines, joined into one (without the `sbatch: error:` prefixes)."""
    text = out.stderr or ""
    if "Could not establish a configuration source" in text:
        return NO_CONFIG
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [re.sub(r"^\w+: (error|fatal):\s*", "", ln) for ln in lines if re.search(r": (error|fatal):", ln)]
    return "; ".join(errors or lines) or f"exit status {out.returncode}"


# -- job state --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobState:
    state: str  # JobState from scontrol (PENDING, RUNNING, TIMEOUT, ...), or GONE
    reason: str | None = None
    exit_code: int | None = None  # the batch script's status; -N when a signal N killed it
    start: float | None = None  # unix s; only meaningful once the job left the queue
    end: float | None = None
    nodes: str | None = None
    time_limit: str | None = None

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def ended(self) -> bool:
        return not self.pending and not self.running


def _field(line: str, key: str) -> str | None:
    found = re.search(rf"(?:^|\s){re.escape(key)}=(\S*)", line)
    if found is None or found.group(1) in ("", "(null)", "None", "N/A", "Unknown"):
        return None
    return found.group(1)


def _slurm_time(value: str | None) -> float | None:
    """SLURM's timestamps (2026-12-01T09:08:17, the controller's local time) as unix seconds."""
    if value is None:
        return None
    try:
        return time.mktime(time.strptime(value, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _exit_status(value: str | None) -> int | None:
    """ExitCode=3:0 -> 3; ExitCode=0:9 (killed by signal 9) -> -9."""
    if value is None or ":" not in value:
        return None
    code, _, sig = value.partition(":")
    try:
        return -int(sig) if int(sig) else int(code)
    except ValueError:
        return None


def parse_scontrol(line: str) -> JobState:
    """One line of `scontrol show job -o`. Only fields before the paths (Command=, WorkDir=) are trusted."""
    head = re.split(r"\sCommand=", line, maxsplit=1)[0]
    state = (_field(head, "JobState") or GONE).upper()
    return JobState(state=state, reason=_field(head, "Reason"), exit_code=_exit_status(_field(head, "ExitCode")),
                    start=_slurm_time(_field(head, "StartTime")), end=_slurm_time(_field(head, "EndTime")),
                    nodes=_field(head, "NodeList"), time_limit=_field(head, "TimeLimit"))


def parse_sacct(text: str) -> JobState | None:
    """`sacct -n -P -X -o State,ExitCode,Start,End,NodeList` -> the job's final state, if sacct knows it."""
    for line in text.splitlines():
        cols = line.strip().split("|")
        if len(cols) >= 5 and cols[0]:
            return JobState(state=cols[0].split()[0].upper(), exit_code=_exit_status(cols[1]),
                            start=_slurm_time(cols[2]), end=_slurm_time(cols[3]), nodes=cols[4] or None)
    return None


def query_job(tools: SlurmTools, job_id: str) -> JobState:
    """The job's state from the controller; GONE when it no longer knows the job (and sacct, where there is
    accounting storage, does not either). RunError when the controller cannot be asked."""
    out = tools.run("scontrol", "show", "job", "-o", job_id)
    if out.returncode == 0 and out.stdout.strip():
        return parse_scontrol(out.stdout.strip().splitlines()[0])
    if "invalid job id" not in (out.stderr or "").lower():
        raise RunError(f"cannot read the state of SLURM job {job_id}: {error_text(out)}")
    if tools.which("sacct") is not None:
        acct = tools.run("sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State,ExitCode,Start,End,NodeList")
        if acct.returncode == 0:
            known = parse_sacct(acct.stdout)
            if known is not None:
                return known
    return JobState(state=GONE)


# -- the handle -------------------------------------------------------------------------------------------


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


UNKNOWN = JobState(state="PENDING", reason="not asked yet")  # before the first answer: treated as queued


class SlurmRunHandle(RunHandle):
    """A SLURM job running a run. State from the run folder's files first, the controller second.

    The controller is asked by a background thread (every state_poll_s, until the job's state is final), so
    the handle's methods never wait on scontrol: watch_run calls them from an event loop.
    """

    def __init__(self, run_id: str, run_dir: Path, job_id: str, queued_at: float, tools: SlurmTools,
                 state_poll_s: float = 2.0, settle_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.job_id = job_id
        self.queued_at = queued_at
        self.tools = tools
        self.state_poll_s = state_poll_s
        self.settle_s = settle_s
        self._clock = clock
        self._state: JobState | None = None
        self._error: str | None = None
        self._exit_seen_at: float | None = None  # monotonic; when this handle first saw the exit_code file
        self._recorded_start = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._poller: threading.Thread | None = None

    # state ------------------------------------------------------------------------------------------------
    def job_state(self, refresh: bool = False) -> JobState:
        """The scheduler's view. Without refresh: the poller's latest answer (never waits; UNKNOWN, treated
        as queued, before the first one). With refresh: ask scontrol now (blocks; for threads and tests)."""
        if refresh and not (self._state is not None and self._state.ended):
            self._query()
        else:
            self._ensure_poller()
        return self._state or UNKNOWN

    def _query(self) -> None:
        try:
            state = query_job(self.tools, self.job_id)
        except RunError as exc:
            self._error = str(exc)  # the last known state stands while the controller is unreachable
            return
        with self._lock:
            self._state, self._error = state, None

    def _ensure_poller(self) -> None:
        with self._lock:
            if self._poller is not None or (self._state is not None and self._state.ended):
                return
            self._poller = threading.Thread(target=self._poll, name=f"slurm-state-{self.job_id}", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        while True:
            self._query()
            if self._state is not None and self._state.ended:
                return
            if self._exit_seen_at is not None and time.monotonic() - self._exit_seen_at > 2 * self.settle_s:
                return  # SLURM is stuck winding the job down; nobody waits for it any more
            self._wake.wait(self.state_poll_s)
            self._wake.clear()

    @property
    def scheduler_error(self) -> str | None:
        """Why the last state query failed (e.g. the controller was unreachable), or None."""
        return self._error

    def _file_start(self) -> float | None:
        start = _mtime(self.run_dir / STARTED)
        if start is not None and not self._recorded_start:
            self._recorded_start = True
            self._record_start(start)
        return start

    def _record_start(self, start: float) -> None:
        """Put the real start and the queue time into run.json, once."""
        try:
            info = read_run_info(self.run_dir)
        except RunError:
            return
        if info.get("started_at") is None:
            info["started_at"] = start
            info["queue_time_s"] = round(max(0.0, start - self.queued_at), 3)
            _write_json_atomic(self.run_dir / RUN_JSON, info)

    # RunHandle --------------------------------------------------------------------------------------------
    def is_pending(self) -> bool:
        if (self.run_dir / STARTED).exists() or (self.run_dir / EXIT_CODE).exists():
            return False
        return self.job_state().pending

    def is_alive(self) -> bool:
        """Until SLURM has finished the job. Once the command has written its exit status, SLURM gets
        settle_s to leave COMPLETING (which hides whether it was a time limit or a cancel); after that, or
        while the controller cannot be asked, the exit status alone decides."""
        state = self.job_state()
        if state.ended:
            return False
        if not (self.run_dir / EXIT_CODE).exists():
            return True
        if self._exit_seen_at is None:
            self._exit_seen_at = time.monotonic()
            self._wake.set()  # ask the controller now rather than at the next poll
        if self._error is not None:
            return False
        return time.monotonic() - self._exit_seen_at < self.settle_s

    @property
    def started_at(self) -> float:  # type: ignore[override]
        """The job's real start: the `started` file, else the controller's StartTime once the job left the
        queue. While pending: now (no run time yet). A job that ended without starting has zero run time."""
        start = self._file_start()
        if start is not None:
            return start
        state = self.job_state()
        if state.pending:
            return self._clock()
        if state.start is not None:
            return state.start
        ended = self.ended_at()
        return ended if ended is not None else self._clock()

    @property
    def queue_time_s(self) -> float | None:  # type: ignore[override]
        """Seconds between submission and the real start; None while the job is still queued."""
        if self.is_pending():
            return None
        return round(max(0.0, self.started_at - self.queued_at), 3)

    def exit_code(self) -> int | None:
        """The batch script's record of the command's status, else SLURM's. A command killed by signal N reads
        -N when the script died with it, or 128 + N (sh's spelling) when `scancel --full` reached the command
        first and the script lived long enough to record it: slurmd signals a job's processes one by one."""
        code = read_exit_code(self.run_dir)
        if code is not None:
            return code
        state = self.job_state()
        return state.exit_code if state.ended and state.state != GONE else None

    def ended_at(self) -> float | None:
        ended = super().ended_at()
        if ended is not None:
            return ended
        state = self.job_state()
        if not state.ended or state.end is None:
            return None
        # EndTime is whole seconds, cut down: up to 1 s before the real end, which put a short job's end before
        # its own start (a wall time of 0). Its last output is no later than the real end and often closer.
        last_output = _mtime(self.run_dir / OUTPUT_LOG)
        return max(state.end, last_output) if last_output is not None else state.end

    def kill(self, grace_s: float = 5.0) -> None:
        """scancel: a queued job is removed; a running one gets SIGTERM on every process now and SIGKILL after
        grace_s from a detached escalation. Returns at once; the job may take a moment to end."""
        state = self.job_state(refresh=True)
        if state.ended:
            return
        if state.pending:
            self._scancel()
        else:
            out = self.tools.run("scancel", "--signal=TERM", "--full", self.job_id)
            if out.returncode != 0 and "pending" in error_text(out).lower():
                self._scancel()  # it was still queued after all
            else:
                self._check_scancel(out)
                self.tools.spawn(_ESCALATE, f"{max(0.0, grace_s):g}", self.job_id)
        self._wake.set()

    def terminate(self) -> None:
        """SIGTERM to the job now; the detached escalation still sends SIGKILL after the usual grace, so a job
        that ignores TERM ends even if no watcher is left to escalate."""
        self.kill(DEFAULT_KILL_GRACE_S)

    def force_kill(self) -> None:
        """SIGKILL to every process of the job, then end the job; returns at once."""
        state = self.job_state(refresh=True)
        if state.ended:
            return
        self._check_scancel(self.tools.run("scancel", "--signal=KILL", "--full", self.job_id))
        self._scancel()
        self._wake.set()

    def _scancel(self) -> None:
        self._check_scancel(self.tools.run("scancel", self.job_id))

    def _check_scancel(self, out: subprocess.CompletedProcess[str]) -> None:
        if out.returncode != 0 and not scancel_came_too_late(out, (self.run_dir / EXIT_CODE).exists()):
            raise RunError(f"scancel of SLURM job {self.job_id} (run {self.run_id}) failed: {error_text(out)}")

    def scheduler_outcome(self) -> tuple[Outcome, str] | None:
        """How SLURM ended the job, when SLURM rather than the command decided."""
        state = self.job_state()
        if not state.ended:
            return None  # not known (yet): the command's exit status decides
        if state.state == GONE:
            if read_exit_code(self.run_dir) is not None:
                return None
            return (Outcome.CRASHED, f"SLURM no longer knows job {self.job_id} and it left no exit status "
                                     f"in {self.run_dir}")
        if state.state == "COMPLETED" and not (self.run_dir / STARTED).exists():
            return (Outcome.CRASHED, f"SLURM job {self.job_id} ran on {state.nodes or 'its node'} but wrote "
                                     f"nothing to {self.run_dir}: the run folder must be on a file system "
                                     "the compute nodes share")
        entry = SCHEDULER_OUTCOMES.get(state.state)
        if entry is None or (state.state == "FAILED" and read_exit_code(self.run_dir) is not None):
            return None  # the command ended by itself: its exit status says it all
        outcome, text = entry
        return outcome, text.format(job=self.job_id, node=state.nodes or "?", reason=state.reason or "?",
                                    limit=state.time_limit or "?")


# -- the runner -------------------------------------------------------------------------------------------


def _job_script(spec: RunSpec, run_dir: Path, cwd: Path) -> str:
    env = {"PYTHONUNBUFFERED": "1", **spec.env,
           "SPEEDCOPILOT_RUN_ID": spec.run_id, "SPEEDCOPILOT_RUN_DIR": str(run_dir)}
    bad = [name for name in env if not _NAME.match(name)]
    if bad:
        raise RunError(f"cannot start run: {bad[0]!r} is not a valid environment variable name")
    lines = []
    for name, value in sorted(env.items()):
        export = f"export {name}={shlex.quote(value)}"
        if name in DEVICE_VARIABLES or name.startswith(("SLURM_", "SLURMD_")):  # the allocation's own wins
            export = f'[ -n "${{{name}+x}}" ] || {export}'
        lines.append(export)
    return _JOB_SCRIPT.format(
        run_id=spec.run_id,
        device_pattern="|".join(DEVICE_VARIABLES),
        run_dir=shlex.quote(str(run_dir)),
        env="\n".join(lines),
        cwd=shlex.quote(str(cwd)),
        command=" ".join(shlex.quote(arg) for arg in spec.command),
    )


def _job_id(stdout: str) -> str | None:
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        return None
    job = lines[-1].split(";")[0]  # --parsable: "id" or "id;cluster"
    return job if job.isdigit() else None


class SlurmRunner:
    """Submits runs as SLURM batch jobs; same interface as runs.LocalRunner."""

    name = RUNNER_NAME

    def __init__(self, url: str = "slurm://", tool_env: Mapping[str, str] | None = None,
                 state_poll_s: float = 2.0) -> None:
        self.target = SlurmTarget.parse(url)
        self.tools = SlurmTools(tool_env)
        self.state_poll_s = state_poll_s

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "SlurmRunner":
        return cls(url, **kwargs)

    def start(self, spec: RunSpec) -> SlurmRunHandle:
        if not spec.command:
            raise RunError("cannot start run: the command is empty")
        cwd = Path(spec.cwd).resolve()
        if not cwd.is_dir():
            raise RunError(f"cannot start run: working directory {cwd} does not exist")
        run_dir = Path(spec.run_dir).resolve()
        if (run_dir / RUN_JSON).exists():
            raise RunError(f"run folder {run_dir} already holds a run; use a new run id")
        if os.sep not in spec.command[0] and "PATH" not in spec.env:
            raise RunError(f"cannot start run: {spec.command[0]!r} is not a path and the run's environment has "
                           "no PATH; a SLURM job gets only the run's environment")
        if self.tools.which("sbatch") is None:
            raise RunError("SLURM is not installed here (no sbatch on PATH); run speedcopilot on a login node "
                           "of the cluster, or install the SLURM client tools")
        run_dir.mkdir(parents=True, exist_ok=True)
        script = run_dir / JOB_SCRIPT
        script.write_text(_job_script(spec, run_dir, cwd))
        script.chmod(0o755)
        log = str(run_dir / OUTPUT_LOG).replace("%", "%%")  # sbatch expands %j etc. in --output
        argv = ["sbatch", "--parsable", f"--job-name={spec.run_id}", f"--output={log}", "--open-mode=append",
                f"--chdir={cwd}", "--export=NONE", "--no-requeue", *self.target.sbatch_options(spec.timeout_s),
                str(script)]
        queued_at = time.time()
        out = self.tools.run(*argv)
        if out.returncode != 0:
            raise RunError(f"SLURM refused the job for run {spec.run_id}: {error_text(out)}")
        job_id = _job_id(out.stdout)
        if job_id is None:
            raise RunError(f"sbatch gave no job id for run {spec.run_id} (it printed {out.stdout.strip()!r})")
        info = {
            "run_id": spec.run_id,
            "runner": self.name,
            "target": self.target.url,
            "job_id": job_id,
            "sbatch": argv,
            "command": list(spec.command),
            "cwd": str(cwd),
            "queued_at": queued_at,
            "started_at": None,  # the job's real start, filled in when a handle first sees it
            "queue_time_s": None,
            "host": socket.gethostname(),
            "target_val_loss": spec.target_val_loss,
            "timeout_s": spec.timeout_s,
            "hang_timeout_s": spec.hang_timeout_s,
            "stop_at_target": spec.stop_at_target,  # a re-attached watcher must stop it at the target too
        }
        _write_json_atomic(run_dir / RUN_JSON, info)
        return SlurmRunHandle(spec.run_id, run_dir, job_id, queued_at, self.tools, self.state_poll_s)

    def attach(self, run_dir: Path) -> SlurmRunHandle:
        info = read_run_info(run_dir)
        if info.get("runner") != self.name:
            raise RunError(f"run in {run_dir} was started by the {info.get('runner')!r} runner, not {self.name!r}")
        try:
            return SlurmRunHandle(str(info["run_id"]), Path(run_dir).resolve(), str(info["job_id"]),
                                  float(info["queued_at"]), self.tools, self.state_poll_s)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{Path(run_dir) / RUN_JSON} is incomplete ({exc}); the run cannot be re-attached") from exc
