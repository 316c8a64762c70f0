"""Helpers for run tests: tiny training-like scripts that print upstream-format lines, and process probes."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

from copilot.core.runs import RunSpec, group_members, new_run_id
from tests.support.waiting import HANG_GUARD_S

PYTHON = sys.executable

_PRELUDE = """\
import os, sys, time, subprocess
def log(s):
    print(s, flush=True)
def val(step, total, loss, t_ms):
    log(f"step:{step}/{total} val_loss:{loss:.4f} train_time:{t_ms:.0f}ms step_avg:{t_ms / max(step, 1):.2f}ms")
def train(step, total, t_ms):
    log(f"step:{step}/{total} train_time:{t_ms:.0f}ms step_avg:{t_ms / step:.2f}ms")
"""

# Val losses 4.0, 3.5, 3.30, 3.2775 at train times 0, 50, 100, 150 ms (time to 3.28 is 150 ms), exit 0;
# the sleeps keep the claimed train time below the real wall time.
REACHES = """\
log("Running Python " + sys.version.split()[0])
losses = [4.0, 3.5, 3.30, 3.2775]
for i, loss in enumerate(losses):
    if i:
        train(i * 10, 30, i * 50 - 5)
    val(i * 10, 30, loss, i * 50)
    time.sleep(0.06)
log("peak memory allocated: 30220 MiB reserved: 38672 MiB")
"""

ABOVE = """\
for i, loss in enumerate([4.0, 3.5, 3.31]):
    val(i * 10, 20, loss, i * 20)
    time.sleep(0.03)
"""

CRASHES = """\
val(0, 100, 4.0, 0)
train(1, 100, 57)
def forward(x):
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
forward(1)
"""

# Prints a NaN train loss and then would train on for a minute: the watcher must kill it.
DIVERGES = """\
val(0, 100, 4.0, 0)
log("step:1/100 train_loss:5.1234 train_time:57ms step_avg:57.00ms")
log("step:2/100 train_loss:nan train_time:114ms step_avg:57.00ms")
open("pid", "w").write(str(os.getpid()))
time.sleep(60)
"""

# Spawns a child (same process group), prints one line, then goes silent.
HANGS = """\
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open("child.pid", "w").write(str(child.pid))
val(0, 100, 4.0, 0)
time.sleep(60)
"""

# Keeps printing train lines for a minute: only an overall timeout stops it.
CHATTY = """\
for step in range(1, 600):
    train(step, 600, step * 57.0)
    time.sleep(0.1)
"""

# Ignores SIGTERM: a cancel must fall back to SIGKILL after the grace period.
STUBBORN = """\
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
val(0, 100, 4.0, 0)
open("ready", "w").write("1")
for step in range(1, 600):
    train(step, 600, step * 57.0)
    time.sleep(0.1)
"""

# Slow enough that its parent can exit long before it ends.
SLOW_REACHES = """\
for i, loss in enumerate([4.0, 3.5, 3.2]):
    val(i * 10, 20, loss, i * 100)
    time.sleep(0.5)
"""

# Claims ten seconds of training time in a run that lasts a fraction of a second.
LYING_TIMER = """\
val(0, 10, 4.0, 0)
val(10, 10, 3.0, 10000)
"""


def write_script(directory: Path, body: str, name: str = "train_fixture.py") -> Path:
    path = directory / name
    path.write_text(_PRELUDE + textwrap.dedent(body))
    return path


def make_spec(
    tmp_path: Path,
    body: str,
    *,
    target: float = 3.28,
    timeout_s: float | None = 30.0,
    hang_timeout_s: float | None = 10.0,
    run_id: str | None = None,
) -> RunSpec:
    """A spec running `body` as a script, with cwd = tmp_path/work and run_dir = tmp_path/runs/<id>."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    script = write_script(work, body)
    run_id = run_id or new_run_id()
    return RunSpec(
        run_id=run_id,
        command=[PYTHON, str(script)],
        cwd=work,
        run_dir=tmp_path / "runs" / run_id,
        env={},
        target_val_loss=target,
        timeout_s=timeout_s,
        hang_timeout_s=hang_timeout_s,
    )


def pid_alive(pid: int) -> bool:
    """A live, non-zombie process (a killed child whose parent is gone may linger as a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] not in "ZX"


def group_gone(pgid: int) -> bool:
    members = group_members(pgid)
    return not members if members is not None else not pid_alive(pgid)


def wait_for(predicate, timeout_s: float = HANG_GUARD_S, interval_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def kill_quietly(pid: int) -> None:
    """Cleanup for a test that failed before the code under test stopped a process."""
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
