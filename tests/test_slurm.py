"""SlurmRunner end to end against a real SLURM controller and node on this machine (tests/support/slurm.py;
skipped with the reason when slurm-wlm/munge are missing or the daemons cannot start)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copilot.core.errors import RunError
from copilot.core.runs import EXIT_CODE, OUTPUT_LOG, RUN_JSON, Outcome, RunSpec, new_run_id, read_result, watch_run
from copilot.core.runs.slurm import (
    STARTED,
    URL_OPTIONS,
    SlurmRunHandle,
    SlurmRunner,
    SlurmTarget,
    parse_scontrol,
    scancel_came_too_late,
)
from copilot.core.tracks.microdata import micro_dir, prepare_micro_data
from copilot.resources import records_dir
from tests.support.slurm import SlurmCluster, slurm_cluster  # noqa: F401  (the session fixture)

PATH_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
FAST = dict(poll_s=0.1, kill_grace_s=1.0)
DEADLINE_S = 120.0  # generous: the machine is shared and loaded


@pytest.fixture
def cluster(slurm_cluster: SlurmCluster):
    yield slurm_cluster
    slurm_cluster.cancel_all()  # no job of a test outlives it


@pytest.fixture
def runner(cluster: SlurmCluster) -> SlurmRunner:
    return SlurmRunner(cluster.url(), tool_env=cluster.env, state_poll_s=0.2)


def shell_spec(tmp_path: Path, script: str, *, env: dict[str, str] | None = None, target: float = 3.0,
               timeout_s: float | None = 120.0, hang_timeout_s: float | None = 60.0,
               command: list[str] | None = None) -> RunSpec:
    run_id = new_run_id()
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return RunSpec(run_id=run_id, command=command or ["/bin/sh", "-c", script], cwd=work,
                   run_dir=tmp_path / "runs" / run_id,
                   env=dict(PATH_ENV if env is None else env), target_val_loss=target, timeout_s=timeout_s,
                   hang_timeout_s=hang_timeout_s)


async def until(predicate, timeout_s: float = DEADLINE_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def log_text(handle: SlurmRunHandle) -> str:
    try:
        return (handle.run_dir / OUTPUT_LOG).read_text(errors="replace")
    except OSError:
        return ""


# -- pure parts -------------------------------------------------------------------------------------------


def test_parse_targets() -> None:
    t = SlurmTarget.parse("slurm://gpu_h100?gpus=8&time=00:30:00&account=speed&cpus=16&mem=200G&qos=high")
    assert (t.partition, t.gpus, t.time, t.account, t.cpus, t.mem, t.qos) == (
        "gpu_h100", 8, "00:30:00", "speed", 16, "200G", "high")
    assert t.sbatch_options() == ["--nodes=1", "--partition=gpu_h100", "--gpus=8", "--time=00:30:00",
                                  "--account=speed", "--cpus-per-task=16", "--mem=200G", "--qos=high"]
    assert SlurmTarget.parse("slurm://") == SlurmTarget() == SlurmTarget.parse("slurm")
    assert SlurmTarget.parse("slurm://?gpus=1").partition is None
    # no time= in the URL: the run timeout plus a minute, as SLURM's backstop
    assert SlurmTarget().sbatch_options(timeout_s=600) == ["--nodes=1", "--time=11"]
    for bad, message in [("ssh://host/x", "not a slurm target"), ("slurm://gpu/x", "not a path"),
                         ("slurm://gpu?gpu=8", "unknown option 'gpu'"), ("slurm://?gpus=eight", "whole number"),
                         ("slurm://?cpus=0", "at least 1"), ("slurm://?time=", "empty"),
                         ("slurm://?qos=a&qos=b", "given 2 times"), ("slurm://a b", "not a partition")]:
        with pytest.raises(RunError, match=message):
            SlurmTarget.parse(bad)


_words = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=127),
                 min_size=1, max_size=12)


@given(partition=st.one_of(st.none(), _words), gpus=st.one_of(st.none(), st.integers(0, 64)),
       time_limit=st.one_of(st.none(), st.sampled_from(["30", "00:30:00", "1-00:00:00"])),
       account=st.one_of(st.none(), _words), cpus=st.one_of(st.none(), st.integers(1, 256)),
       mem=st.one_of(st.none(), st.sampled_from(["64G", "200000M"])), qos=st.one_of(st.none(), _words))
def test_target_url_round_trips(partition, gpus, time_limit, account, cpus, mem, qos) -> None:
    target = SlurmTarget(partition=partition, gpus=gpus, time=time_limit, account=account, cpus=cpus, mem=mem,
                         qos=qos)
    assert SlurmTarget.parse(target.url) == target
    assert set(URL_OPTIONS) >= {opt.split("=")[0] for opt in target.url.partition("?")[2].split("&") if opt}


def test_parse_scontrol_line() -> None:
    line = ("JobId=7 JobName=r-1 UserId=root(0) JobState=NODE_FAIL Reason=NodeDown Dependency=(null) "
            "ExitCode=0:9 RunTime=00:00:03 TimeLimit=00:01:00 SubmitTime=2026-12-01T09:08:17 "
            "StartTime=2026-12-01T09:08:18 EndTime=Unknown NodeList=localnode "
            "Command=/tmp/x JobState=COMPLETED y/job.sh WorkDir=/tmp")
    state = parse_scontrol(line)
    assert (state.state, state.reason, state.exit_code, state.nodes, state.time_limit) == (
        "NODE_FAIL", "NodeDown", -9, "localnode", "00:01:00")
    assert state.end is None and state.start == time.mktime(time.strptime("2026-12-01T09:08:18", "%Y-%m-%dT%H:%M:%S"))
    assert state.ended and not state.pending and not state.running


def test_a_scancel_that_came_too_late_is_no_error_but_a_refused_one_is() -> None:
    """Stopping a run at its target while its command ends by itself: scancel then fails, which must not fail the
    run (seen under two hogs at 1138a2b: exit status 229 with nothing on stderr, and the agent stopped with
    `baseline_failed`). The first two outputs were seen from the real scancel here (slurm-wlm 22.05), the
    others are scancel's own messages for those errors."""
    def out(rc: int, stderr: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(["scancel"], rc, "", stderr)

    too_late = [out(229), out(1, "scancel: error: Kill job error on job id 13: Invalid job id specified\n"),
                out(1, "scancel: error: Kill job error on job id 7: Job/step already completing or completed\n")]
    assert all(scancel_came_too_late(o, command_ended=False) for o in too_late)
    refused = out(1, "scancel: error: Kill job error on job id 7: Access/permission denied\n")
    assert not scancel_came_too_late(refused, command_ended=False)
    assert scancel_came_too_late(refused, command_ended=True)  # the command is over: nothing is left to stop


def test_no_sbatch_is_one_clear_line(tmp_path: Path) -> None:
    runner = SlurmRunner("slurm://", tool_env={"PATH": str(tmp_path)})
    with pytest.raises(RunError, match=r"^SLURM is not installed here \(no sbatch on PATH\)") as info:
        runner.start(shell_spec(tmp_path, "true"))
    assert "\n" not in str(info.value)
    with pytest.raises(RunError, match=r"'torchrun' is not a path and the run's environment has no PATH"):
        runner.start(shell_spec(tmp_path, "", env={}, command=["torchrun", "train_gpt.py"]))


# -- against the real cluster -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def micro_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("microdata")
    prepare_micro_data(base, size="small")
    return micro_dir(base)


def micro_spec(tmp_path: Path, data: Path, steps: int = 4) -> RunSpec:
    work = tmp_path / "ws"
    work.mkdir()
    shutil.copy(records_dir() / "micro" / "record_0" / "train_gpt.py", work / "train_gpt.py")
    run_id = new_run_id()
    # the micro track needs no PATH or HOME: an absolute interpreter and these variables are all it reads
    env = {"SPEEDCOPILOT_MICRO_DATA": str(data), "MICRO_MAX_STEPS": str(steps), "MICRO_VAL_EVERY": "2",
           "MICRO_VAL_WINDOWS": "4", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    return RunSpec(run_id=run_id, command=[sys.executable, "train_gpt.py"], cwd=work,
                   run_dir=tmp_path / "session" / "runs" / run_id, env=env, target_val_loss=1.6,
                   timeout_s=240.0, hang_timeout_s=120.0)


@pytest.mark.slow
async def test_micro_run_through_sbatch(cluster: SlurmCluster, tmp_path: Path, micro_data: Path) -> None:
    runner = SlurmRunner(cluster.url(cpus=2), tool_env=cluster.env, state_poll_s=0.2)
    spec = micro_spec(tmp_path, micro_data)
    handle = runner.start(spec)
    info = json.loads((handle.run_dir / RUN_JSON).read_text())
    assert info["runner"] == "slurm" and info["job_id"] == handle.job_id and info["queued_at"] == handle.queued_at
    assert f"--job-name={spec.run_id}" in info["sbatch"] and "--export=NONE" in info["sbatch"]
    live: list[tuple[str, bool]] = []  # (line, the job had not ended when the line arrived)
    result = await watch_run(handle, spec, on_line=lambda ln: live.append(
        (ln, not (handle.run_dir / EXIT_CODE).exists())), **FAST)
    assert result.outcome is Outcome.ABOVE_TARGET and result.exit_code == 0, result
    assert result.steps == 4 and result.final_val_loss is not None and result.final_val_loss > 1.6
    vals = [ln for ln, _ in live if "val_loss:" in ln]
    assert len(vals) == 3  # steps 0, 2, 4
    assert any(running for ln, running in live if "val_loss:" in ln), "no line arrived while the job ran"
    # run time is the job's own: started (the `started` file) to ended (exit_code), never the queue
    started = (handle.run_dir / STARTED).stat().st_mtime
    ended = (handle.run_dir / EXIT_CODE).stat().st_mtime
    assert handle.started_at == started and result.wall_time_s == pytest.approx(ended - started)
    assert handle.queue_time_s == pytest.approx(max(0.0, started - handle.queued_at), abs=1e-3)
    stored = json.loads((handle.run_dir / RUN_JSON).read_text())
    assert stored["started_at"] == started and stored["queue_time_s"] == handle.queue_time_s
    assert read_result(handle.run_dir) == result


async def test_failing_job_is_crashed_with_its_exit_code(runner: SlurmRunner, tmp_path: Path) -> None:
    spec = shell_spec(tmp_path, "echo 'step:0/10 val_loss:4.0000 train_time:0ms step_avg:0.00ms'; "
                                "echo 'RuntimeError: boom' >&2; exit 3")
    # a run folder with a space and sbatch's %j pattern in its path: the log must still land there
    spec = RunSpec(**{**spec.__dict__, "run_dir": tmp_path / "odd %j dir" / spec.run_id})
    handle = runner.start(spec)
    result = await watch_run(handle, spec, **FAST)
    assert result.outcome is Outcome.CRASHED and result.exit_code == 3
    assert "RuntimeError: boom" in result.error_tail  # stderr goes to the same output.log
    assert result.final_val_loss == 4.0 and (tmp_path / "odd %j dir" / spec.run_id / OUTPUT_LOG).exists()


async def test_cancel_scancels_the_job(runner: SlurmRunner, cluster: SlurmCluster, tmp_path: Path) -> None:
    spec = shell_spec(tmp_path, "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done")
    handle = runner.start(spec)
    task = asyncio.create_task(watch_run(handle, spec, **FAST))
    await until(lambda: "tick 2" in log_text(handle), what="the job's output")
    await asyncio.to_thread(handle.cancel, 1.0)
    result = await asyncio.wait_for(task, DEADLINE_S)
    assert result.outcome is Outcome.CANCELLED
    await until(lambda: handle.job_id not in cluster.job_ids(), what="the job to leave the queue")
    assert not handle.is_alive()


async def test_kill_escalates_to_sigkill_without_blocking(runner: SlurmRunner, cluster: SlurmCluster,
                                                          tmp_path: Path) -> None:
    # the command ignores SIGTERM: only the escalation's SIGKILL after the grace period ends it
    stubborn = "trap '' TERM; echo ready; while true; do sleep 0.2; done"
    handle = runner.start(shell_spec(tmp_path, stubborn))
    await until(lambda: "ready" in log_text(handle), what="the job to start")
    handle.kill(grace_s=15.0)  # returns at once: SIGTERM now, SIGKILL from a detached escalation later
    assert handle.job_state(refresh=True).running  # the TERM was ignored; the grace period is running
    await until(lambda: handle.job_state(refresh=True).ended, what="the escalation's SIGKILL")
    # SIGKILL, in either of its two spellings: -9 when the batch shell died with its command, 128 + 9 when
    # slurmd's one-by-one kills let the shell see its command die first and record sh's status for it
    assert handle.exit_code() in (-9, 128 + 9) and not handle.is_alive()


async def test_external_scancel_is_reported_cancelled(runner: SlurmRunner, cluster: SlurmCluster,
                                                      tmp_path: Path) -> None:
    spec = shell_spec(tmp_path, "echo ready; sleep 300")
    handle = runner.start(spec)
    task = asyncio.create_task(watch_run(handle, spec, **FAST))
    await until(lambda: "ready" in log_text(handle), what="the job to start")
    assert cluster.tool("scancel", handle.job_id).returncode == 0  # someone else, by hand
    result = await asyncio.wait_for(task, DEADLINE_S)
    assert result.outcome is Outcome.CANCELLED
    assert result.error_tail[-1] == f"SLURM job {handle.job_id} was cancelled (scancel)"


async def test_a_job_with_no_exit_file_ends_no_earlier_than_its_last_output(runner: SlurmRunner,
                                                                              tmp_path: Path) -> None:
    """A job killed before its wrapper wrote `exit_code` ends at SLURM's EndTime, which is cut down to the
    second and so could fall before the job's own start (a wall time of 0, seen under two hogs)."""
    spec = shell_spec(tmp_path, "echo 'step:0/10 val_loss:4.0000 train_time:0ms step_avg:0.00ms'; echo last")
    handle = runner.start(spec)
    await until(lambda: (handle.run_dir / EXIT_CODE).exists(), what="the job's exit file")
    await until(lambda: handle.job_state(refresh=True).ended, what="SLURM to record the job's end")
    (handle.run_dir / EXIT_CODE).unlink()  # the fault: as if the job had been killed before its wrapper wrote it
    last_output = (handle.run_dir / OUTPUT_LOG).stat().st_mtime
    ended = handle.ended_at()
    assert ended is not None and ended >= last_output >= handle.started_at


async def test_node_failure_is_a_crash_with_a_reason(runner: SlurmRunner, cluster: SlurmCluster,
                                                     tmp_path: Path) -> None:
    spec = shell_spec(tmp_path, "echo ready; sleep 300")
    handle = runner.start(spec)
    task = asyncio.create_task(watch_run(handle, spec, **FAST))
    await until(lambda: "ready" in log_text(handle), what="the job to start")
    try:
        down = cluster.tool("scontrol", "update", f"NodeName={cluster.node}", "State=DOWN", "Reason=test")
        assert down.returncode == 0, down.stderr
        result = await asyncio.wait_for(task, DEADLINE_S)
    finally:
        cluster.tool("scontrol", "update", f"NodeName={cluster.node}", "State=RESUME")
        await until(lambda: cluster.node_state() == "idle", what="the node to return to service")
    assert result.outcome is Outcome.CRASHED
    assert result.error_tail[-1] == result.error_summary == (
        f"SLURM job {handle.job_id} ended because node {cluster.node} failed; start the run again")


@pytest.mark.slow
async def test_slurm_time_limit_is_timed_out(cluster: SlurmCluster, tmp_path: Path) -> None:
    runner = SlurmRunner(cluster.url(time=1), tool_env=cluster.env, state_poll_s=0.5)
    # no timeout of our own: SLURM's time limit (1 minute; checked about every 30 s) must end it
    spec = shell_spec(tmp_path, "echo ready; while true; do echo tick; sleep 1; done", timeout_s=None,
                      hang_timeout_s=None)
    handle = runner.start(spec)
    result = await asyncio.wait_for(watch_run(handle, spec, **FAST), 240.0)
    assert result.outcome is Outcome.TIMED_OUT, result
    assert result.error_tail[-1] == f"SLURM stopped job {handle.job_id} at its time limit (00:01:00)"
    assert result.wall_time_s >= 60.0  # SLURM never stops a job before its limit


async def test_reattach_after_the_starting_process_is_gone(runner: SlurmRunner, cluster: SlurmCluster,
                                                          tmp_path: Path) -> None:
    spec = shell_spec(tmp_path, "for i in 1 2 3 4 5; do echo \"step:$i/5 val_loss:3.$i train_time:${i}00ms "
                                "step_avg:100.00ms\"; sleep 0.5; done")
    starter = (
        "import json, sys; from pathlib import Path\n"
        "from copilot.core.runs import RunSpec\n"
        "from copilot.core.runs.slurm import SlurmRunner\n"
        "a = json.loads(sys.argv[1])\n"
        "spec = RunSpec(a['run_id'], a['command'], Path(a['cwd']), Path(a['run_dir']), a['env'], 3.0)\n"
        "print(SlurmRunner('slurm://', tool_env=a['tool_env']).start(spec).job_id)\n"
    )
    args = dict(run_id=spec.run_id, command=spec.command, cwd=str(spec.cwd), run_dir=str(spec.run_dir),
                env=spec.env, tool_env=cluster.env)
    done = subprocess.run([sys.executable, "-c", starter, json.dumps(args)], capture_output=True, text=True,
                          timeout=DEADLINE_S, cwd=Path(__file__).parents[1], check=False)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    handle = runner.attach(spec.run_dir)  # a fresh runner in this process: only run.json links them
    assert handle.job_id == job_id
    lines: list[str] = []
    result = await watch_run(handle, spec, on_line=lines.append, **FAST)
    assert result.exit_code == 0 and result.steps == 5 and result.best_val_loss == 3.1
    assert sum("val_loss" in ln for ln in lines) == 5
    assert result.outcome is Outcome.ABOVE_TARGET  # 3.1 > target 3.0


async def test_queued_run_is_pending_and_its_timers_wait(cluster: SlurmCluster, tmp_path: Path) -> None:
    # a job that takes both CPUs of the node keeps the next one queued until the test lets it go
    release = tmp_path / "release"
    blocker_runner = SlurmRunner(cluster.url(cpus=cluster.cpus), tool_env=cluster.env, state_poll_s=0.2)
    blocker = blocker_runner.start(shell_spec(tmp_path, f"echo holding; while [ ! -e {release} ]; do sleep 0.1; done"))
    await until(lambda: "holding" in log_text(blocker), what="the blocking job to start")
    runner = SlurmRunner(cluster.url(), tool_env=cluster.env, state_poll_s=0.2)
    hang_s, timeout_s = 3.0, 10.0
    spec = shell_spec(tmp_path, "echo 'step:0/1 val_loss:2.5000 train_time:0ms step_avg:0.00ms'",
                      timeout_s=timeout_s, hang_timeout_s=hang_s)
    handle = runner.start(spec)
    task = asyncio.create_task(watch_run(handle, spec, **FAST))
    await until(handle.is_pending, what="the second job to be queued")
    assert handle.is_alive() and handle.queue_time_s is None
    await until(lambda: handle.job_state(refresh=True).reason == "Resources", what="the reason Resources")
    pending_since = time.monotonic()
    # both timers would have fired by now if queue time counted; the watcher must still be waiting
    await until(lambda: time.monotonic() - pending_since > timeout_s + hang_s, what="the pending window")
    assert handle.is_pending() and not task.done()
    pending_for = time.monotonic() - pending_since
    release.write_text("go")
    result = await asyncio.wait_for(task, DEADLINE_S)
    assert result.outcome is Outcome.REACHED_TARGET and result.exit_code == 0, result
    assert handle.queue_time_s is not None and handle.queue_time_s >= pending_for - 1.0
    # the run's wall time is started -> ended only
    assert result.wall_time_s == pytest.approx(handle.ended_at() - handle.started_at)
    assert handle.started_at - handle.queued_at >= pending_for - 1.0


async def test_job_sees_exactly_its_environment(cluster: SlurmCluster, tmp_path: Path) -> None:
    tricky = "it's a \"test\" with $HOME and `backticks`\nand a second line"
    tool_env = {**cluster.env, "LEAK_ME": "from-the-submitting-shell"}
    runner = SlurmRunner(cluster.url(), tool_env=tool_env, state_poll_s=0.2)
    # SLURM_JOB_ID as if speedcopilot ran inside an outer allocation: the job's own id must win
    spec = shell_spec(tmp_path, "", env={**PATH_ENV, "KEEP_ME": tricky, "SLURM_JOB_ID": "999999"},
                      command=["/usr/bin/env", "-0"])  # no shell in between
    handle = runner.start(spec)
    result = await watch_run(handle, spec, **FAST)
    assert result.exit_code == 0, result
    pairs = [item.split("=", 1) for item in log_text(handle).split("\0") if item]
    env = dict(pairs)
    assert env["KEEP_ME"] == tricky and env["PATH"] == PATH_ENV["PATH"]
    assert env["SPEEDCOPILOT_RUN_ID"] == spec.run_id and env["SPEEDCOPILOT_RUN_DIR"] == str(handle.run_dir)
    assert env["PYTHONUNBUFFERED"] == "1" and env["SLURM_JOB_ID"] == handle.job_id
    assert "LEAK_ME" not in env  # sbatch's own environment does not reach the job
    # nor does the login environment SLURM loads for --export=NONE (HOME, SHELL, USER, MAIL, ...)
    allowed = set(spec.env) | {"SPEEDCOPILOT_RUN_ID", "SPEEDCOPILOT_RUN_DIR", "PYTHONUNBUFFERED"}
    assert pairs.count(["SLURM_JOB_ID", handle.job_id]) == 1
    extra = {k for k in env if k not in allowed and not k.startswith(("SLURM_", "SLURMD_"))}
    assert extra == set(), extra
    assert "SLURM_EXPORT_ENV" not in env and "SLURM_GET_USER_ENV" not in env  # an srun inside passes env on


def test_submission_refused_is_sbatch_s_own_line(cluster: SlurmCluster, tmp_path: Path) -> None:
    runner = SlurmRunner(cluster.url(partition="no_such_partition"), tool_env=cluster.env)
    with pytest.raises(RunError, match=r"SLURM refused the job for run r-\S+: invalid partition specified: "
                                       r"no_such_partition; Batch job submission failed: Invalid partition"):
        runner.start(shell_spec(tmp_path, "true"))
    bad_time = SlurmRunner(cluster.url(time="soon"), tool_env=cluster.env)
    with pytest.raises(RunError, match=r"Invalid --time specification"):
        bad_time.start(shell_spec(tmp_path, "true"))


def test_no_slurm_configuration_is_one_clear_line(tmp_path: Path) -> None:
    if Path("/etc/slurm/slurm.conf").exists() or shutil.which("sbatch") is None:
        pytest.skip("needs the SLURM client tools and no system-wide slurm.conf")
    runner = SlurmRunner("slurm://", tool_env={k: v for k, v in os.environ.items() if k != "SLURM_CONF"})
    with pytest.raises(RunError, match=r"^SLURM refused the job for run r-\S+: SLURM has no configuration here "
                                       r"\(no slurm.conf, SLURM_CONF unset.*set SLURM_CONF$"):
        runner.start(shell_spec(tmp_path, "true"))


def test_attach_refuses_another_runner_s_run(runner: SlurmRunner, tmp_path: Path) -> None:
    (tmp_path / RUN_JSON).write_text(json.dumps({"run_id": "r-1", "runner": "local", "pid": 1}))
    with pytest.raises(RunError, match="started by the 'local' runner"):
        runner.attach(tmp_path)


def test_build_runner_turns_slurm_urls_into_runners() -> None:
    from copilot.cli._common import build_runner
    from copilot.config import Settings
    from copilot.core.errors import ConfigError

    runner = build_runner(Settings(runner="slurm://gpu?gpus=8&time=00:30:00"))
    assert isinstance(runner, SlurmRunner) and runner.name == "slurm"
    assert runner.target == SlurmTarget(partition="gpu", gpus=8, time="00:30:00")
    assert build_runner(Settings(runner="slurm")).target == SlurmTarget()
    with pytest.raises(RunError, match="unknown option 'gpu'"):
        build_runner(Settings(runner="slurm://gpu?gpu=8"))
    with pytest.raises(ConfigError, match=r"runner must be local .*slurm://\[partition\].*; got 'pbs://x'"):
        build_runner(Settings(runner="pbs://x"))
