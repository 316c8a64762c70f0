"""SshRunner end to end against a real sshd on 127.0.0.1 (skipped with a reason when openssh-server is missing)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.core.errors import RunError
from copilot.core.runs.ssh import SshRunner, SshTarget
from copilot.core.runs import Outcome, RunSpec, group_alive, new_run_id, watch_run
from tests.support.sshd import SshServer, require_sshd
from tests.support.waiting import wait_until

TRAIN = '''import os, sys, time
n = int(sys.argv[1]); delay = float(sys.argv[2])
print("DATA_PATH=" + os.environ.get("DATA_PATH", "-"), "FOO=" + os.environ.get("FOO", "-"), flush=True)
if len(sys.argv) > 3 and sys.argv[3] == "child":
    import subprocess
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
gate = os.environ.get("GATE")  # a file the script waits for after step 0: the watcher opens it on seeing step 0
for step in range(n + 1):
    ms = step * 100
    print(f"step:{step}/{n} val_loss:{4.0 - 0.25 * step:.4f} train_time:{ms}ms step_avg:{ms / max(step, 1):.2f}ms", flush=True)
    while step == 0 and gate and not os.path.exists(gate):
        time.sleep(0.02)
    time.sleep(delay)
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    require_sshd()
    with SshServer.start(tmp_path_factory.mktemp("ssh")) as srv:
        yield srv


@pytest.fixture
def remote_root(tmp_path: Path):
    root = tmp_path / "remote"
    yield root
    # everything a test starts, it stops: kill any remote run group still alive
    for pid_file in root.glob("runs/*/pid"):
        try:
            os.killpg(int(pid_file.read_text().strip()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "train.py").write_text(TRAIN)
    for args in (["init", "-q", "-b", "main"], ["add", "train.py"], ["commit", "-q", "-m", "seed"]):
        subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True)
    return ws


def make_spec(workspace: Path, tmp_path: Path, args: list[str], env: dict[str, str] | None = None,
              target: float = 3.0) -> RunSpec:
    run_id = new_run_id()
    return RunSpec(run_id=run_id, command=[sys.executable, "train.py", *args], cwd=workspace,
                   run_dir=tmp_path / "session" / "runs" / run_id, env=env or {}, target_val_loss=target,
                   timeout_s=60.0, hang_timeout_s=30.0)


def runner_for(server: SshServer, root: Path, **kwargs) -> SshRunner:
    return SshRunner(server.url(root), ssh_options=server.client_options, poll_s=0.1, **kwargs)


def test_parse_targets() -> None:
    t = SshTarget.parse("ssh://alice@gpu-box:2222/srv/runs")
    assert (t.user, t.host, t.port, t.path) == ("alice", "gpu-box", 2222, "/srv/runs")
    home = SshTarget.parse("ssh://gpu/~/speed?data=/mnt/fineweb")
    assert home.path == "speed" and home.user is None and home.port is None and home.data_path == "/mnt/fineweb"
    assert home.url == "ssh://gpu/~/speed"
    for bad in ("http://x/y", "ssh:///path", "ssh://host", "ssh://host/", "ssh://host:notaport/x"):
        with pytest.raises(RunError):
            SshTarget.parse(bad)


def test_run_streams_live_and_finishes(server: SshServer, remote_root: Path, workspace: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    runner = runner_for(server, remote_root, remote_env={"FOO": "bar", "GATE": str(gate)})
    local_data = str(tmp_path / "localdata")
    env = {**os.environ, "DATA_PATH": local_data, "HOME": "/not/sent"}
    spec = make_spec(workspace, tmp_path, ["8", "0.15"], env=env)
    handle = runner.start(spec)
    seen: list[int] = []

    def on_metric(point) -> None:
        seen.append(point.step)
        gate.touch()  # the script waits after step 0 until the watcher has seen it: only a live stream ends the run

    result = asyncio.run(watch_run(handle, spec, on_metric=on_metric, poll_s=0.05))
    assert result.outcome is Outcome.REACHED_TARGET and result.exit_code == 0
    assert result.final_val_loss == pytest.approx(2.0) and result.steps == 8
    assert seen == list(range(9))
    remote_log = (remote_root / "runs" / spec.run_id / "output.log").read_bytes()
    assert (spec.run_dir / "output.log").read_bytes() == remote_log
    first = remote_log.decode().splitlines()[0]
    assert first == f"DATA_PATH={remote_root.resolve()}/nanogpt-data FOO=bar"
    assert result.wall_time_s > 1.0  # 8 × 0.15 s of sleeping, measured on the remote clock
    # the remote ran the committed workspace
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workspace, capture_output=True, text=True).stdout.strip()
    assert (remote_root / "src" / sha / "train.py").read_text() == TRAIN
    info = (spec.run_dir / "run.json").read_text()
    assert '"runner": "ssh"' in info and sha in info


def test_nonzero_exit_is_mirrored(server: SshServer, remote_root: Path, workspace: Path, tmp_path: Path) -> None:
    runner = runner_for(server, remote_root, remote_env={"EXIT_WITH": "3"})
    spec = make_spec(workspace, tmp_path, ["1", "0"])
    result = asyncio.run(watch_run(runner.start(spec), spec, poll_s=0.05))
    assert result.outcome is Outcome.CRASHED and result.exit_code == 3
    assert (spec.run_dir / "exit_code").read_text().strip() == "3"


def test_cancel_kills_the_remote_group(server: SshServer, remote_root: Path, workspace: Path, tmp_path: Path) -> None:
    runner = runner_for(server, remote_root)
    spec = make_spec(workspace, tmp_path, ["1000", "0.1", "child"])
    handle = runner.start(spec)
    wait_until(lambda: b"step:1/" in _read(spec.run_dir / "output.log"), "live output")
    pgid = int((remote_root / "runs" / spec.run_id / "pid").read_text())
    assert pgid == handle.pgid and group_alive(pgid)
    handle.cancel(grace_s=2.0)
    assert not group_alive(pgid)  # the training process and the child it spawned are gone
    result = asyncio.run(watch_run(handle, spec, poll_s=0.05))
    assert result.outcome is Outcome.CANCELLED
    assert not handle.is_alive()


def test_what_a_remote_run_leaves_in_the_background_is_ended_with_it(server: SshServer, remote_root: Path,
                                                                      workspace: Path, tmp_path: Path) -> None:
    runner = runner_for(server, remote_root)
    spec = make_spec(workspace, tmp_path, ["4", "0.05", "child"])  # the script starts `sleep 300` and exits 0
    handle = runner.start(spec)
    pgid = handle.pgid
    result = asyncio.run(watch_run(handle, spec, poll_s=0.05))
    assert result.outcome is Outcome.REACHED_TARGET and result.exit_code == 0
    assert not group_alive(pgid)  # the remote child went with the run, not 300 s later


def test_reattach_from_a_fresh_runner(server: SshServer, remote_root: Path, workspace: Path, tmp_path: Path) -> None:
    spec = make_spec(workspace, tmp_path, ["20", "0.1"])
    first = runner_for(server, remote_root).start(spec)
    log = spec.run_dir / "output.log"
    wait_until(lambda: b"step:2/" in _read(log), "step 2")
    first.detach()  # the UI died; the remote run goes on
    size_at_detach = log.stat().st_size
    assert not (spec.run_dir / "exit_code").exists()

    handle = runner_for(server, remote_root).attach(spec.run_dir)
    assert handle.is_alive() and handle.pid == first.pid
    result = asyncio.run(watch_run(handle, spec, poll_s=0.05))
    assert result.outcome is Outcome.REACHED_TARGET and result.steps == 20 and result.exit_code == 0
    assert log.stat().st_size > size_at_detach
    assert log.read_bytes() == (remote_root / "runs" / spec.run_id / "output.log").read_bytes()
    with pytest.raises(RunError, match="runner"):
        from copilot.core.runs import LocalRunner

        LocalRunner().attach(spec.run_dir)


def test_refuses_dirty_workspace_and_bad_host(server: SshServer, remote_root: Path, workspace: Path,
                                              tmp_path: Path) -> None:
    (workspace / "train.py").write_text(TRAIN + "\n# uncommitted\n")
    with pytest.raises(RunError, match="uncommitted"):
        runner_for(server, remote_root).start(make_spec(workspace, tmp_path, ["1", "0"]))
    closed = SshRunner(f"ssh://{server.user}@127.0.0.1:1{remote_root}", ssh_options=server.client_options)
    with pytest.raises(RunError, match="ssh to"):
        closed.root()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
