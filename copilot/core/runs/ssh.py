"""Runs on a remote machine over SSH, with the same run-folder contract as the local runner (runs.py).

Target: `ssh://[user@]host[:port]/path` (`/~/path` = relative to the remote home). Only the system `ssh`
binary is used, so the user's ssh config, agent and jump hosts apply; extra options go in `ssh_options`.
The remote needs a POSIX sh, git-free tar, GNU coreutils (`tail --pid`, `setsid`) — any Linux GPU box.

How a run goes:
1. Sync: the workspace's HEAD commit is streamed with `git archive HEAD | ssh … tar -x` into
   `<path>/src/<commit>` (once per commit; immutable afterwards; the working tree must be clean).
2. Start: a detached wrapper (`setsid sh`, all fds redirected, so the ssh session can end) leads its own
   process group, writes `pid`, `started_at`, runs the command with output to `<path>/runs/<id>/output.log`,
   then writes `ended_at` and `exit_code`. It ignores SIGTERM itself so it can record the status of a
   cancelled command.
3. Mirror: a background thread keeps one `ssh … tail -c +N -F --pid=<wrapper>` open and appends what arrives
   to the LOCAL `run_dir/output.log`; when the wrapper is gone it fetches the rest and writes the LOCAL
   `exit_code`. `runs.watch_run` therefore works unchanged. Lost connections are retried from the local size.
4. Cancel kills the remote process group (TERM, then KILL after the grace period).
5. `attach(run_dir)` reads `run.json` (target, remote folder, pid) and restarts the mirror from the local size.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from copilot.core.errors import RunError
from copilot.core.runs import EXIT_CODE, OUTPUT_LOG, RUN_JSON, RunHandle, RunSpec, read_run_info

RUNNER_NAME = "ssh"
# Local-only variables never sent to the remote (the session passes the whole local environment).
_LOCAL_ONLY = re.compile(
    r"^(PATH|HOME|PWD|OLDPWD|SHELL|USER|LOGNAME|TERM|DISPLAY|LANG|LC_\w+|TMPDIR|VIRTUAL_ENV|CONDA_\w+|PYTHONPATH"
    r"|SSH_\w+|XDG_\w+|COLORTERM|_|SHLVL|HOSTNAME|MAIL|GIT_\w+)$"
)
_DATA_KEYS = ("DATA_PATH", "NANOGPT_TRAIN_FILES", "NANOGPT_VAL_FILES")

# The detached wrapper. $1 = run folder (absolute), $2 = work folder, rest = the command.
_WRAPPER = r"""d="$1"; w="$2"; shift 2
echo $$ > "$d/pid"
date +%s.%N > "$d/started_at" 2>/dev/null
cd "$w" || { echo "cannot cd to $w" > "$d/output.log"; echo 127 > "$d/exit_code"; exit 127; }
"$@" < /dev/null > "$d/output.log" 2>&1 &
child=$!
trap '' TERM INT HUP
wait "$child"; c=$?
date +%s.%N > "$d/ended_at" 2>/dev/null
printf '%s\n' "$c" > "$d/exit_code.tmp" && mv -f "$d/exit_code.tmp" "$d/exit_code"
"""


@dataclass(frozen=True)
class SshTarget:
    host: str
    path: str  # absolute, or relative to the remote home
    user: str | None = None
    port: int | None = None
    data_path: str | None = None  # ?data=… : DATA_PATH on the remote

    @classmethod
    def parse(cls, url: str) -> "SshTarget":
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise RunError(f"not an ssh target: {url!r}; use ssh://[user@]host[:port]/path")
        try:
            port = parts.port
        except ValueError as exc:
            raise RunError(f"bad port in {url!r}: {exc}") from exc
        path = unquote(parts.path)
        if path.startswith("/~/") or path == "/~":
            path = path[3:] or "."
        if not path or path == "/":
            raise RunError(f"{url!r} names no remote folder; use ssh://host/path/to/folder (runs go under it)")
        data = parse_qs(parts.query).get("data", [None])[0]
        return cls(host=parts.hostname, path=path, user=unquote(parts.username) if parts.username else None,
                   port=port, data_path=data)

    @property
    def url(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        path = self.path if self.path.startswith("/") else "/~/" + self.path
        return f"ssh://{user}{self.host}{port}{path}"


class _Ssh:
    """argv builder and runner for the system ssh binary."""

    def __init__(self, target: SshTarget, options: list[str], connect_timeout_s: int = 15) -> None:
        self.target = target
        self.options = list(options)
        self.connect_timeout_s = connect_timeout_s

    def argv(self, script: str, keepalive: bool = False) -> list[str]:
        argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}"]
        if keepalive:
            argv += ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if self.target.port:
            argv += ["-p", str(self.target.port)]
        if self.target.user:
            argv += ["-l", self.target.user]
        argv += [*self.options, self.target.host, "sh -c " + shlex.quote(script)]
        return argv

    def run(self, script: str, stdin: Any = subprocess.DEVNULL, timeout_s: float = 60.0,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        try:
            out = subprocess.run(self.argv(script), stdin=stdin, capture_output=True, timeout=timeout_s, check=False)
        except FileNotFoundError as exc:
            raise RunError("the ssh client is not installed (need the `ssh` command on PATH)") from exc
        except subprocess.TimeoutExpired as exc:
            raise RunError(f"ssh to {self.target.host} did not answer within {timeout_s:.0f}s") from exc
        if check and out.returncode != 0:
            raise RunError(self._explain(out))
        return out

    def _explain(self, out: subprocess.CompletedProcess[bytes]) -> str:
        err = out.stderr.decode("utf-8", "replace").strip().splitlines()
        last = err[-1] if err else f"exit status {out.returncode}"
        if out.returncode == 255:
            return (f"ssh to {self.target.url} failed: {last}. Check that `ssh {self.target.host}` works "
                    "without a password prompt (keys or agent).")
        return f"remote command on {self.target.host} failed: {last}"


# -- the handle and its mirror ----------------------------------------------------------------------------


class SshRunHandle(RunHandle):
    def __init__(self, run_id: str, run_dir: Path, started_at: float, ssh: _Ssh, remote_dir: str, pid: int,
                 pgid: int, poll_s: float = 0.2) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.started_at = started_at
        self.ssh = ssh
        self.remote_dir = remote_dir
        self.pid = pid
        self.pgid = pgid
        self.poll_s = poll_s
        self.remote_times: tuple[float, float] | None = None
        self._done = threading.Event()
        self._stop = threading.Event()
        self._stream: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.mirror_error: str | None = None
        self._thread = threading.Thread(target=self._mirror, name=f"ssh-mirror-{run_id}", daemon=True)
        self._thread.start()

    # RunHandle --------------------------------------------------------------------------------------------
    def is_alive(self) -> bool:
        return not self._done.is_set() and not (self.run_dir / EXIT_CODE).exists()

    def exit_code(self) -> int | None:
        try:
            return int((self.run_dir / EXIT_CODE).read_text().strip())
        except (OSError, ValueError):
            return None

    def ended_at(self) -> float | None:
        """Wall time measured on the remote clock (start to end of the command), placed after started_at."""
        if self.remote_times is not None:
            start, end = self.remote_times
            return self.started_at + max(0.0, end - start)
        return super().ended_at()

    def kill(self, grace_s: float = 5.0) -> None:
        steps = max(1, int(grace_s / 0.1))
        # dash's kill takes no "--"; "-$p" is the process group
        script = (
            f"p={self.pgid}; kill -TERM -$p 2>/dev/null; i=0; "
            f"while kill -0 -$p 2>/dev/null && [ $i -lt {steps} ]; do sleep 0.1; i=$((i+1)); done; "
            "kill -KILL -$p 2>/dev/null; i=0; "
            "while kill -0 -$p 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
            "kill -0 -$p 2>/dev/null && echo alive || echo gone"
        )
        out = self.ssh.run(script, timeout_s=grace_s + 30.0)
        if b"alive" in out.stdout:
            raise RunError(f"remote run {self.run_id} (process group {self.pgid}) survived SIGKILL")
        self._done.wait(timeout=15.0)

    def any_alive(self) -> bool:
        """The command, or anything it left behind in its remote process group (`sleep 300 &`), still runs."""
        if self.is_alive():
            return True
        out = self.ssh.run(f"p={self.pgid}; kill -0 -$p 2>/dev/null && echo alive || echo gone", timeout_s=30.0,
                           check=False)
        return b"alive" in out.stdout

    async def stop(self, grace_s: float = 5.0, poll_s: float = 0.05) -> None:
        """TERM to the remote group, KILL after grace_s, in one ssh call off the event loop."""
        import asyncio

        del poll_s  # the remote script polls itself; one round trip instead of one per poll
        await asyncio.to_thread(self.kill, grace_s)

    def terminate(self) -> None:
        self._signal("TERM")

    def force_kill(self) -> None:
        self._signal("KILL")

    def _signal(self, name: str) -> None:
        # dash's kill takes no "--"; "-$p" is the process group
        self.ssh.run(f"p={self.pgid}; kill -{name} -$p 2>/dev/null; true", timeout_s=30.0)

    # extra ------------------------------------------------------------------------------------------------
    def detach(self) -> None:
        """Stop mirroring (the remote run goes on); attach() from any process continues it."""
        self._stop.set()
        with self._lock:
            if self._stream is not None and self._stream.poll() is None:
                self._stream.terminate()
        self._thread.join(timeout=10.0)

    def wait_mirrored(self, timeout_s: float | None = None) -> bool:
        return self._done.wait(timeout_s)

    # mirror thread ----------------------------------------------------------------------------------------
    def _local_size(self) -> int:
        try:
            return (self.run_dir / OUTPUT_LOG).stat().st_size
        except OSError:
            return 0

    def _mirror(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._stream_once()
                if self._stop.is_set():
                    return
                finished, got_data = self._check_finished()
                if finished:
                    self._done.set()
                    return
                if got_data:  # no GNU `tail --pid` there: this loop becomes a 1 s poll
                    backoff = 0.5
            except (OSError, RunError) as exc:
                self.mirror_error = str(exc)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, 10.0)

    def _stream_once(self) -> None:
        log = shlex.quote(f"{self.remote_dir}/{OUTPUT_LOG}")
        script = f"exec tail -c +{self._local_size() + 1} -F --pid={self.pid} -s {self.poll_s} {log} 2>/dev/null"
        with self._lock:
            if self._stop.is_set():
                return
            self._stream = subprocess.Popen(self.ssh.argv(script, keepalive=True), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        proc = self._stream
        assert proc.stdout is not None
        with open(self.run_dir / OUTPUT_LOG, "ab") as out:
            fd = proc.stdout.fileno()
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                if self._stop.is_set():
                    break
                out.write(data)
                out.flush()
        proc.stdout.close()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _check_finished(self) -> tuple[bool, bool]:
        """Status + the rest of the log in one call; writes the local exit_code when the run has ended.
        Returns (finished, got new output)."""
        d = shlex.quote(self.remote_dir)
        script = (
            f"d={d}; ec=$(cat \"$d/exit_code\" 2>/dev/null); "
            f"if kill -0 {self.pid} 2>/dev/null; then a=1; else a=0; fi; "
            "s=$(cat \"$d/started_at\" 2>/dev/null); e=$(cat \"$d/ended_at\" 2>/dev/null); "
            "printf '%s|%s|%s|%s\\n' \"$a\" \"$ec\" \"$s\" \"$e\"; "
            f"tail -c +{self._local_size() + 1} \"$d/{OUTPUT_LOG}\" 2>/dev/null; true"
        )
        out = self.ssh.run(script, timeout_s=120.0)
        head, _, rest = out.stdout.partition(b"\n")
        alive, code, start, end = (head.decode("utf-8", "replace").split("|") + ["", "", "", ""])[:4]
        if rest:
            with open(self.run_dir / OUTPUT_LOG, "ab") as fh:
                fh.write(rest)
        if alive.strip() == "1":
            return False, bool(rest)
        self.remote_times = _times(start, end)
        if code.strip().lstrip("-").isdigit():
            tmp = self.run_dir / (EXIT_CODE + ".tmp")
            tmp.write_text(code.strip() + "\n")
            os.replace(tmp, self.run_dir / EXIT_CODE)
        return True, bool(rest)


def _times(start: str, end: str) -> tuple[float, float] | None:
    try:
        return float(start.strip()), float(end.strip())
    except ValueError:
        return None


# -- the runner -------------------------------------------------------------------------------------------


class SshRunner:
    """Starts runs on `ssh://[user@]host[:port]/path`; same interface as runs.LocalRunner."""

    name = RUNNER_NAME

    def __init__(self, url: str, ssh_options: list[str] | None = None, remote_env: dict[str, str] | None = None,
                 setup: str | None = None, poll_s: float = 0.2) -> None:
        self.target = SshTarget.parse(url)
        self.ssh_options = list(ssh_options or [])
        self.remote_env = dict(remote_env or {})
        self.setup = setup  # shell text run before the command on the remote (e.g. activating a venv)
        self.poll_s = poll_s
        self._ssh = _Ssh(self.target, self.ssh_options)
        self._root: str | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "SshRunner":
        return cls(url, **kwargs)

    def root(self) -> str:
        """The remote folder as an absolute path (created if needed)."""
        if self._root is None:
            out = self._ssh.run(f"mkdir -p {shlex.quote(self.target.path)} && cd {shlex.quote(self.target.path)} && pwd")
            self._root = out.stdout.decode().strip().splitlines()[-1]
        return self._root

    # sync -------------------------------------------------------------------------------------------------
    def sync_workspace(self, cwd: Path) -> tuple[str, str]:
        """Put the workspace's HEAD commit at <root>/src/<sha>; returns (sha, remote folder)."""
        sha = _git(cwd, "rev-parse", "HEAD").strip()
        if _git(cwd, "status", "--porcelain", "--untracked-files=no").strip():
            raise RunError(f"{cwd} has uncommitted changes; commit them first (a remote run uses the HEAD commit)")
        dest = f"{self.root()}/src/{sha}"
        q = shlex.quote(dest)
        check = self._ssh.run(f"[ -d {q} ] && echo present || echo missing")
        if b"present" in check.stdout:
            return sha, dest
        archive = subprocess.Popen(["git", "-C", str(cwd), "archive", "--format=tar", sha],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            tmp = shlex.quote(f"{dest}.partial.{os.getpid()}")
            self._ssh.run(f"rm -rf {tmp} && mkdir -p {tmp} && tar -xf - -C {tmp} && mv {tmp} {q}",
                          stdin=archive.stdout, timeout_s=600.0)
        finally:
            assert archive.stdout is not None
            archive.stdout.close()
            archive.wait()
        if archive.returncode != 0:
            raise RunError(f"git archive of {sha[:8]} failed: {archive.stderr.read().decode(errors='replace') if archive.stderr else ''}")
        return sha, dest

    # env --------------------------------------------------------------------------------------------------
    def remote_environment(self, env: dict[str, str]) -> dict[str, str]:
        """What the remote gets: variables the session added on top of this process's environment (local-only
        ones dropped), local data paths moved to the remote data folder, then remote_env on top."""
        out = {k: v for k, v in env.items() if os.environ.get(k) != v and not _LOCAL_ONLY.match(k)}
        local_data = env.get("DATA_PATH")
        remote_data = self.target.data_path or f"{self.root()}/nanogpt-data"
        for key in _DATA_KEYS:
            value = out.get(key)
            if value is not None and local_data and value.startswith(local_data):
                out[key] = remote_data + value[len(local_data):]
        out.update(self.remote_env)
        out["PYTHONUNBUFFERED"] = "1"
        return out

    # start / attach ---------------------------------------------------------------------------------------
    def start(self, spec: RunSpec) -> SshRunHandle:
        if not spec.command:
            raise RunError("cannot start run: the command is empty")
        run_dir = Path(spec.run_dir).resolve()
        if (run_dir / RUN_JSON).exists():
            raise RunError(f"run folder {run_dir} already holds a run; use a new run id")
        run_dir.mkdir(parents=True, exist_ok=True)
        sha, workdir = self.sync_workspace(Path(spec.cwd))
        remote_dir = f"{self.root()}/runs/{spec.run_id}"
        env = self.remote_environment(dict(spec.env))
        env["SPEEDCOPILOT_RUN_ID"] = spec.run_id
        env["SPEEDCOPILOT_RUN_DIR"] = remote_dir
        command = ["env", *[f"{k}={v}" for k, v in sorted(env.items())], *spec.command]
        if self.setup:
            command = ["sh", "-c", f'{self.setup}\nexec "$@"', "sh", *command]
        inner = " ".join(shlex.quote(a) for a in ["sh", "-c", _WRAPPER, "sh", remote_dir, workdir, *command])
        d = shlex.quote(remote_dir)
        script = (
            f"if [ -e {d} ]; then echo 'run folder exists' >&2; exit 3; fi; mkdir -p {d} || exit 3; "
            f"setsid {inner} < /dev/null > /dev/null 2>&1 & "
            f"i=0; while [ ! -s {d}/pid ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; cat {d}/pid"
        )
        started_at = time.time()
        out = self._ssh.run(script, timeout_s=60.0)
        try:
            pid = int(out.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError) as exc:
            raise RunError(f"the remote run did not report its process id (is `setsid` installed on "
                           f"{self.target.host}?)") from exc
        info = {
            "run_id": spec.run_id,
            "runner": self.name,
            "target": self.target.url,
            "remote_root": self.root(),
            "remote_dir": remote_dir,
            "remote_workdir": workdir,
            "commit": sha,
            "pid": pid,
            "pgid": pid,  # setsid: the wrapper leads its own session and process group
            "command": list(spec.command),
            "cwd": str(Path(spec.cwd).resolve()),
            "started_at": started_at,
            "host": self.target.host,
            "target_val_loss": spec.target_val_loss,
            "timeout_s": spec.timeout_s,
            "hang_timeout_s": spec.hang_timeout_s,
            "stop_at_target": spec.stop_at_target,  # a re-attached watcher must stop it at the target too
        }
        _write_json(run_dir / RUN_JSON, info)
        return SshRunHandle(spec.run_id, run_dir, started_at, self._ssh, remote_dir, pid, pid, self.poll_s)

    def attach(self, run_dir: Path) -> SshRunHandle:
        info = read_run_info(run_dir)
        if info.get("runner") != self.name:
            raise RunError(f"run in {run_dir} was started by the {info.get('runner')!r} runner, not {self.name!r}")
        try:
            target = SshTarget.parse(str(info["target"]))
            ssh = _Ssh(target, self.ssh_options)
            return SshRunHandle(str(info["run_id"]), Path(run_dir).resolve(), float(info["started_at"]), ssh,
                                str(info["remote_dir"]), int(info["pid"]), int(info["pgid"]), self.poll_s)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{Path(run_dir) / RUN_JSON} is incomplete ({exc}); the run cannot be re-attached") from exc


def _git(cwd: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise RunError("git is not installed; a remote run ships the workspace with `git archive`") from exc
    if out.returncode != 0:
        raise RunError(f"{cwd} is not a usable git workspace: {out.stderr.strip() or out.returncode}")
    return out.stdout


def _write_json(path: Path, data: dict[str, Any]) -> None:
    import json

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
