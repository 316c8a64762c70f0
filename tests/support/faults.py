"""Real faults for the reliability tests: tiny and read-only tmpfs mounts, an ext4 image the kernel turns read-only
mid-run, a disk filled to the last byte, drivers killed with SIGKILL, and the console script run as a user runs it.

Mounting needs root (CAP_SYS_ADMIN): `require_mounts()` skips with the reason otherwise. Every mount a test makes
is unmounted in its teardown, whatever happened (lazily, if a process still holds a file there).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from copilot.core.runs import group_members
from copilot.core.session.events import EVENTS_FILE, read_events
from tests.support.waiting import wait_until

EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")
DEADLINE_S = 240.0  # a hang guard, not a speed check: the machine may be loaded

_mount_ok: bool | None = None


def require_mounts() -> None:
    """Skip (with the reason) unless this process may mount file systems."""
    global _mount_ok
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs / ext4 image (the fault tests run as root in CI)")
    if _mount_ok is None:
        probe = Path(f"/tmp/speedcopilot-mount-probe-{os.getpid()}")
        probe.mkdir(exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
        _mount_ok = done.returncode == 0
        if _mount_ok:
            subprocess.run(["umount", str(probe)], capture_output=True)
        probe.rmdir()
    if not _mount_ok:
        pytest.skip("mount(2) is not permitted here (a container without CAP_SYS_ADMIN)")


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)  # a process still holds a file there


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        _umount(path)


def remount(path: Path, read_only: bool) -> None:
    subprocess.run(["mount", "-o", f"remount,{'ro' if read_only else 'rw'}", str(path)], check=True,
                   capture_output=True)


@contextlib.contextmanager
def ext4_image(path: Path, image: Path, size_mb: int = 64) -> Iterator[Path]:
    """An ext4 file system on a loop device, mounted with errors=remount-ro: `fs_error` makes the kernel switch it
    to read-only under open files, as it does when a disk fails."""
    if shutil.which("mkfs.ext4") is None or shutil.which("e2fsck") is None:
        pytest.skip("e2fsprogs (mkfs.ext4, e2fsck) is not installed")
    with open(image, "wb") as fh:
        fh.truncate(size_mb * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext4 image here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        _umount(path)


def fs_error(mount_point: Path) -> None:
    """Make the kernel report an ext4 error on this mount (the file system goes read-only; writers get
    EROFS, or EIO in the moment between the journal's abort and the read-only flag)."""
    source = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mount_point)], capture_output=True, text=True,
                            check=True).stdout.strip()
    knob = Path("/sys/fs/ext4") / Path(source).name / "trigger_fs_error"
    if not knob.exists():
        pytest.skip(f"{knob} is missing (a kernel without ext4's error trigger)")
    knob.write_text("1")


def fsck_and_remount(mount_point: Path, image: Path) -> None:
    """What an admin does after a disk error: unmount (once the last process holding a file there, such as a
    git helper of the driver that just exited, is gone), check, mount again read-write."""
    try:
        wait_for(lambda: subprocess.run(["umount", str(mount_point)], capture_output=True).returncode == 0,
                 f"{mount_point} to be free to unmount", timeout_s=60)
    except AssertionError:
        raise AssertionError(f"{mount_point} stays busy; held by {holders(mount_point)}") from None
    subprocess.run(["e2fsck", "-f", "-y", str(image)], capture_output=True)  # exit 1: errors fixed
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mount_point)], check=True,
                   capture_output=True)


def holders(mount_point: Path) -> list[str]:
    """Processes with their working folder or an open file under `mount_point` (for a failing unmount)."""
    found = []
    prefix = str(mount_point)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [os.readlink(proc / "cwd")] + [os.readlink(fd) for fd in (proc / "fd").iterdir()]
            if any(link.startswith(prefix) for link in links):
                command = (proc / "cmdline").read_bytes().replace(bytes(1), b" ")[:200].decode(errors="replace")
                found.append(f"{proc.name} {command}")
        except OSError:
            continue
    return found


def fill_disk(folder: Path) -> Path:
    """Write zeros until the disk under `folder` refuses (ENOSPC); the filler file is returned to be removed."""
    filler = folder / "filler.bin"
    block = b"\0" * (1 << 16)
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    with open(filler, "ab", buffering=0) as fh:  # the last partial block: down to the final byte
        try:
            while True:
                fh.write(b"\0" * 512)
        except OSError:
            pass
    return filler


# -- the console script, and waiting on files ---------------------------------------------------------------


def cli_env(data: Path, **extra: str) -> dict[str, str]:
    """The environment of a user running the console script on a tiny micro run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICRO_", "SPEEDCOPILOT_"))}
    env.update({"SPEEDCOPILOT_DATA_DIR": str(data), "MICRO_MAX_STEPS": "6", "MICRO_VAL_EVERY": "2",
                "MICRO_VAL_WINDOWS": "2", "COLUMNS": "200", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = DEADLINE_S
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def spawn(*args: str, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as fh:
        return subprocess.Popen([EXE, *args], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)


def wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = DEADLINE_S) -> Any:
    """tests/support/waiting.py's wait_until, with this module's longer guard (drivers, mounts, tmux)."""
    return wait_until(predicate, what, timeout_s, interval_s=0.05)


def events_of(session_dir: Path) -> list[Any]:
    return read_events(session_dir / EVENTS_FILE).events


def has_event(session_dir: Path, kind: str, **fields: Any) -> bool:
    """A cheap look at the raw log (no full read) for an event of that type and those fields."""
    try:
        lines = (session_dir / EVENTS_FILE).read_text(errors="replace").splitlines()
    except OSError:
        return False
    for line in lines:
        if f'"type":"{kind}"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if all(record.get(k) == v for k, v in fields.items()):
            return True
    return False


def run_dirs(session_dir: Path) -> list[Path]:
    return sorted(p for p in (session_dir / "runs").glob("r-*") if (p / "run.json").exists())


def run_group(run_dir: Path) -> int:
    return int(json.loads((run_dir / "run.json").read_text())["pgid"])


def group_gone(pgid: int) -> bool:
    members = group_members(pgid)
    return not members if members is not None else True


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def end_every_run(root: Path) -> None:
    """Teardown: whatever run a test left behind under `root` is killed (everything a test starts, it stops)."""
    for run_json in root.glob("**/runs/r-*/run.json"):
        try:
            kill_group(int(json.loads(run_json.read_text())["pgid"]))
        except (OSError, ValueError, KeyError):
            pass


def lock_holder(session_dir: Path) -> int | None:
    try:
        return int((session_dir / "events.lock").read_text().strip())
    except (OSError, ValueError):
        return None


class Tmux:
    """A real terminal for the app: a detached tmux server on its own socket."""

    def __init__(self, socket: Path) -> None:
        self.socket = str(socket)

    def __call__(self, *args: str) -> str:
        return self._tmux(*args).stdout

    def _tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=30)

    def screen(self) -> str:
        return self("capture-pane", "-p")

    def start(self, command: str, width: int = 160, height: int = 45) -> None:
        """A new server running `command`; a server that did not start is an error here, not a hang later."""
        started = self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), command)
        assert started.returncode == 0, f"tmux did not start: {started.stderr.strip()}"

    def wait_for(self, text: str, timeout_s: float = DEADLINE_S) -> str:
        """The screen once it shows `text`; past the hang guard, an error that shows the screen."""
        try:
            return wait_for(lambda: self.screen() if text in self.screen() else None, f"{text!r} on the screen",
                            timeout_s)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen was:\n{self.screen()}") from None

    def close(self) -> None:
        """Kill the server and wait until it has gone: `kill-server` returns while the old server still
        answers on the socket, and a `new-session` sent to it then fails ("server exited unexpectedly")."""
        self("kill-server")
        wait_for(lambda: not self._listening(), "the tmux server to exit")

    def _listening(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.socket)
            except OSError:  # no socket file, or nothing accepting on it
                return False
        return True
