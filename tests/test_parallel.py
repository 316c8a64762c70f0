"""Parallel autonomous search on real parts: git worktrees per run, real runs (local CPU slots and a real SLURM
controller on localhost), the loopback OpenAI-compatible server, and an agent process killed with SIGKILL.

Runs that must overlap wait for a `go` file the test creates once it has seen them live at the same time (in
the session's log), so overlap is a condition the test checks, never a matter of timing; each draft sets its
own DECAY, so a node's final val loss (4 × DECAY^30) says which commit its run trained.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from copilot.agent.budget import Budget, BudgetUsage
from copilot.agent.loop import AutonomousAgent
from copilot.agent.policies import get_policy
from copilot.agent.tree import AgentTree
from copilot.core.errors import ConfigError
from copilot.core.runs import LocalRunner, read_run_info
from copilot.core.runs.local import cpu_slots
from copilot.core.session import GuardBlocked, Session, SessionOptions
from copilot.core.session import schema as s
from copilot.core.session.engine import RUN_CODE_DIR
from copilot.core.session.events import Event
from copilot.core.session.projection import SessionState
from tests.support import agent as A
from tests.support import waiting
from tests.support.fixture_track import RECORD_0, FixtureTrack
from tests.support.openai_server import OpenAIServer
from tests.support.parallel_driver import provider
from tests.support.slurm import slurm_cluster  # noqa: F401  (the session-wide SLURM fixture)

STEPS, VAL_EVERY, TARGET = 30, 5, 2.0  # the fixture record: val loss 4 * DECAY ** step every 5 steps
DEADLINE_S = 180.0  # generous: the machine is shared


def final_loss(decay: float) -> float:
    """The last val loss of a full run."""
    return round(4.0 * decay ** STEPS, 4)


def scored_loss(decay: float) -> float:
    """What the agent scores (it stops a run at the target): the first val loss at or below it."""
    for step in [*range(0, STEPS, VAL_EVERY), STEPS]:
        if 4.0 * decay ** step <= TARGET:
            return round(4.0 * decay ** step, 4)
    return final_loss(decay)


def draft(decay: str, go: Path | None = None) -> str:
    """A draft with its own DECAY; with `go`, the run waits for that file before it trains (read-only wait,
    so the guard has nothing to object to; it gives up after about four minutes)."""
    wait = ""
    if go is not None:
        wait = (f"    import pathlib\n    for _ in range(12000):\n        if pathlib.Path({str(go)!r}).exists():\n"
                "            break\n        time.sleep(0.02)\n    else:\n        raise SystemExit(3)\n")
    return A.block("DECAY = 0.97  # loss multiplier per step\n\n\ndef main() -> None:\n    loss = 4.0",
                   f"DECAY = {decay}  # loss multiplier per step\n\n\ndef main() -> None:\n{wait}    loss = 4.0",
                   f"Decay {decay} per step.")


def fixture_session(root: Path, server: OpenAIServer, runner=None, **options) -> Session:
    opts = {"mode": "auto", "edit_retries": 0, "hang_timeout_s": 300.0, **options}
    return Session.create(root / "sessions", FixtureTrack(), 0, provider(server.base_url), runner=runner,
                          options=SessionOptions(**opts))


def node_runs(session_dir: Path) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = {}
    for e in A.of_type(session_dir, "run_started"):
        if e.get("node_id") is not None:
            out.setdefault(int(e.get("node_id")), []).append(e)
    return out


def max_live(session_dir: Path, node_only: bool = True) -> int:
    """The most runs live at once, read from the log (run_started .. run_finished)."""
    live: set[str] = set()
    most = 0
    for e in A.events(session_dir):
        if e.type == "run_started" and (not node_only or e.get("node_id") not in (None, 0)):
            live.add(e.get("run_id"))
            most = max(most, len(live))
        elif e.type == "run_finished":
            live.discard(e.get("run_id"))
    return most


def live_node_runs(session_dir: Path) -> list[str]:
    finished = {e.get("run_id") for e in A.of_type(session_dir, "run_finished")}
    return [e.get("run_id") for runs in node_runs(session_dir).values() for e in runs
            if e.get("run_id") not in finished and e.get("node_id") != 0]


def assert_log_in_order(session_dir: Path) -> None:
    """seq 1..n without gaps or repeats (also across a kill), and each node's life in order in the log."""
    events = A.events(session_dir)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    seq_of: dict[tuple[str, object], int] = {}
    for e in events:
        if e.type in ("node_created", "node_scored"):
            seq_of.setdefault((e.type, e.get("node_id")), e.seq)
        elif e.type in ("run_started", "run_running", "run_finished"):
            seq_of.setdefault((e.type, e.get("run_id")), e.seq)
    for node_id, scored in A.nodes_scored(session_dir).items():
        assert seq_of[("node_created", node_id)] < scored[0].seq
        run_id = scored[0].get("run_id")
        if run_id is not None:
            assert seq_of[("node_created", node_id)] < seq_of[("run_started", run_id)] \
                < seq_of[("run_finished", run_id)] < scored[0].seq
            if ("run_running", run_id) in seq_of:
                assert seq_of[("run_started", run_id)] < seq_of[("run_running", run_id)] \
                    < seq_of[("run_finished", run_id)]


async def wait_for(predicate, what: str, timeout: float = DEADLINE_S) -> None:
    await waiting.until(predicate, what, timeout_s=timeout, interval_s=0.05)


def wait_for_sync(predicate, what: str, timeout: float = DEADLINE_S) -> None:
    waiting.wait_until(predicate, what, timeout_s=timeout, interval_s=0.05)


def cpus_allowed(pgid: int) -> set[frozenset[int]]:
    """The CPU affinity of every live process of a process group (from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            line = next(ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("Cpus_allowed_list"))
        except (OSError, ValueError, StopIteration):
            continue
        out.add(frozenset(_cpu_list(line.split(":", 1)[1].strip())))
    return out


def _cpu_list(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


# -- the engine: a run trains its own commit -----------------------------------------------------------------


async def test_start_run_of_a_commit_trains_that_commit_in_its_own_copy(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        session = fixture_session(tmp_path, server)
        start = session.state.start_commit
        await session.checkout(start, branch="other")
        session.workspace.path.joinpath(A.SCRIPT).write_text(RECORD_0.replace("DECAY = 0.97", "DECAY = 0.9"))
        moved = await session.commit_external_edit("decay 0.9")
        assert session.state.head == moved.sha != start
        run = await session.start_run(commit=start, node_id=7)  # HEAD is elsewhere: the run trains `start`
        copy = session.dir / "runs" / run.run_id / RUN_CODE_DIR
        assert (copy / A.SCRIPT).read_text() == RECORD_0 and read_run_info(copy.parent)["cwd"] == str(copy)
        result = await session.wait_run(run.run_id)
        assert result.final_val_loss == pytest.approx(final_loss(0.97), abs=1e-4)
        assert not copy.exists()  # the copy goes with the run; git forgets the worktree too
        assert str(copy) not in session.workspace.repo.git.worktree("list")
        started = A.of_type(session.dir, "run_started")[-1]
        assert (started.get("commit"), started.get("node_id"), started.get("workdir")) == (start, 7, str(copy))
        # the guard checks the commit that runs, not HEAD
        line = '            print(f"step:{step}/{STEPS} val_loss:{loss:.4f} train_time:{train_time_ms:.0f}ms "'
        cheat = RECORD_0.replace(line, line.replace("val_loss:{loss:.4f}", "val_loss:{loss * 0.5:.4f}"))
        session.workspace.path.joinpath(A.SCRIPT).write_text(cheat)
        cheating = await session.commit_external_edit("report half the loss")
        await session.switch_branch("main")
        with pytest.raises(GuardBlocked):
            await session.start_run(commit=cheating.sha)
        assert len(A.of_type(session.dir, "run_started")) == 1
        await session.close()


def test_cpu_slots_split_the_machine_and_share_when_there_are_too_few() -> None:
    assert cpu_slots(2, [0, 1, 2, 3, 4]) == [(0, 1, 2), (3, 4)]
    assert cpu_slots(4, [0, 1]) == [(0,), (1,), (0,), (1,)]
    assert cpu_slots(1, [3, 1]) == [(1, 3)]
    assert LocalRunner(slots=1).slots is None  # one run at a time: the whole machine, as before


def test_live_accelerator_time_is_run_time_only(tmp_path: Path) -> None:
    """A queued run costs nothing; from run_running on, time counts from the job's real start."""
    m = _Events()
    m.add(s.SessionStarted(session_id="x", track="fixture", record=0, gpus=8, start_commit="a" * 40))
    m.add(s.NodeCreated(node_id=1, parent=0, commit="b" * 40))
    m.add(s.RunStarted(run_id="r1", commit="b" * 40, node_id=1, started_by="agent", queued=True))
    state = SessionState.from_events(m.events)
    run = state.runs["r1"]
    assert (run.phase, run.run_seconds(1e12), state.node_phase(state.nodes[1])) == ("queued", 0.0, "queued")
    m.add(s.RunRunning(run_id="r1", started_at=1000.0, queue_time_s=42.0))
    state = SessionState.from_events(m.events)
    run = state.runs["r1"]
    assert (run.phase, run.run_seconds(1010.0), run.queue_time_s) == ("running", 10.0, 42.0)
    assert state.node_phase(state.nodes[1]) == "running"
    m.add(s.RunFinished(run_id="r1", outcome="reached_target", wall_time_s=12.0, accelerator_seconds=96.0,
                        queue_time_s=42.0))
    m.add(s.NodeScored(node_id=1, run_id="r1", outcome="reached_target"))
    state = SessionState.from_events(m.events)
    assert state.node_phase(state.nodes[1]) == "done" and state.runs["r1"].phase == "done"
    usage = BudgetUsage.from_events(m.events)
    assert (usage.nodes, usage.accel_seconds) == (1, 96.0)  # 8 GPUs × 12 s of run time; the 42 s queue is free


class _Events:
    """Events through the schema with increasing seq."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, body: s.EventBody) -> None:
        self.events.append(Event.of(len(self.events) + 1, 1000.0 + len(self.events), body))


# -- local CPU slots: K = 2 on the fixture track ------------------------------------------------------------


async def test_two_nodes_run_at_once_each_on_its_own_commit_and_cpu_slot(tmp_path: Path) -> None:
    go = tmp_path / "go"
    with OpenAIServer() as server:
        server.script([draft("0.95", go), draft("0.93", go)])
        session = fixture_session(tmp_path, server, runner=LocalRunner())
        agent = AutonomousAgent(session, get_policy("flat", 2), Budget(nodes=2), parallel=2)
        task = asyncio.ensure_future(agent.run())
        try:
            await wait_for(lambda: len(live_node_runs(session.dir)) == 2, "two node runs live at once")
            # the working copy moved on to node 2 while node 1's run went on from its own copy
            heads = {int(e.get("node_id")): e.get("commit") for e in A.of_type(session.dir, "node_created")}
            assert session.state.head == heads[2] != heads[1]
            infos = [read_run_info(session.dir / "runs" / r) for r in live_node_runs(session.dir)]
            assert sorted(i["cpu_slot"] for i in infos) == [0, 1]  # one slot each
            slots = LocalRunner(slots=2).slots
            for info in infos:
                await wait_for(lambda: len(cpus_allowed(info["pgid"])) > 0, "the run's processes")
                assert cpus_allowed(info["pgid"]) == {frozenset(slots[info["cpu_slot"]])}
            go.touch()
            summary = await asyncio.wait_for(task, DEADLINE_S)
        finally:
            go.touch()
            if not task.done():
                agent.stop()
                await asyncio.gather(task, return_exceptions=True)
    scored = A.nodes_scored(session.dir)
    assert {i: scored[i][0].get("final_val_loss") for i in (1, 2)} == \
        {1: pytest.approx(scored_loss(0.95), abs=1e-4), 2: pytest.approx(scored_loss(0.93), abs=1e-4)}
    assert summary.stop_reason == "budget" and max_live(session.dir) == 2
    assert_log_in_order(session.dir)
    assert AgentTree.from_events(A.events(session.dir)).nodes.keys() == agent.tree.nodes.keys()
    assert not list((session.dir / "runs").glob(f"*/{RUN_CODE_DIR}"))  # every copy removed


async def test_parallel_search_builds_the_same_tree_as_one_at_a_time(tmp_path: Path) -> None:
    """Forest: 3 drafts, then 2 children of the best. K = 3 runs the drafts together and waits for all three
    scores before choosing the parent of the next step, so it takes the same decisions as K = 1."""
    answers = [A.good_decay("0.96"), A.good_decay("0.94"), A.crash_edit(),
               A.good_decay("0.92", frm="0.94"), A.good_decay("0.93", frm="0.94")]
    trees = {}
    for k in (1, 3):
        with OpenAIServer() as server:
            server.script(answers)
            session = fixture_session(tmp_path / f"k{k}", server, runner=LocalRunner())
            summary = await AutonomousAgent(session, get_policy("forest"), Budget(nodes=5), seed=3,
                                            parallel=k).run()
        scored = A.nodes_scored(session.dir)
        trees[k] = {i: (e.get("parent"), e.get("kind"), scored[i][0].get("outcome"), scored[i][0].get("final_val_loss"),
                        session.workspace.read(A.SCRIPT, e.get("commit")) if e.get("commit") else None)
                    for i, e in A.nodes_created(session.dir).items()}
        assert summary.stop_reason == "budget" and all(len(v) == 1 for v in scored.values())
        assert max_live(session.dir) <= k
        assert_log_in_order(session.dir)
    assert trees[1] == trees[3]
    assert trees[3][4][0] == 2  # the step after the drafts expanded the best draft


async def test_the_accelerator_budget_counts_every_live_run(tmp_path: Path) -> None:
    """Two runs that never end: the budget is spent by both together, so both are cut while neither alone
    has used it, and that while the agent is paused."""
    never = tmp_path / "never"  # never created
    budget = 10.0
    with OpenAIServer() as server:
        server.script([draft("0.95", never), draft("0.93", never)])
        session = fixture_session(tmp_path, server, runner=LocalRunner())
        agent = AutonomousAgent(session, get_policy("flat", 2), Budget(nodes=5, accel_seconds=budget), parallel=2)

        paused: list[bool] = []

        def on_progress(p) -> None:  # noqa: ANN001
            if len(p.live) == 2 and not paused:
                paused.append(True)
                agent.pause()

        task = asyncio.ensure_future(agent.run(on_progress=on_progress))
        await wait_for(lambda: agent.paused, "the agent paused with two live runs")
        cuts_of = lambda: [e for e in A.of_type(session.dir, "note") if e.get("kind") == "agent_budget_cut"]  # noqa: E731
        await wait_for(lambda: len(cuts_of()) == 2, "both runs cut while paused")
        assert agent.paused
        agent.resume()
        summary = await asyncio.wait_for(task, DEADLINE_S)
    scored = A.nodes_scored(session.dir)
    assert {i: (scored[i][0].get("outcome"), scored[i][0].get("reason")) for i in (1, 2)} == \
        {1: ("cancelled", "budget"), 2: ("cancelled", "budget")}
    assert summary.stop_reason == "budget" and summary.detail.startswith("accelerator")
    cuts = [e for e in A.of_type(session.dir, "note") if e.get("kind") == "agent_budget_cut"]
    assert len(cuts) == 2
    baseline = sum(e.get("accelerator_seconds") for e in A.of_type(session.dir, "run_finished")
                   if e.get("run_id") == scored[0][0].get("run_id"))
    started = {e.get("run_id"): e.t for e in A.of_type(session.dir, "run_started") if e.get("node_id") in (1, 2)}
    at_cut = [cuts[0].t - t for t in started.values()]  # each node run's time when the first cut went out
    assert sum(at_cut) + baseline >= budget and max(at_cut) + baseline < budget
    assert A.of_type(session.dir, "budget_exhausted")[0].get("usage")["accel_seconds"] >= budget
    assert_log_in_order(session.dir)


def test_nanogpt_on_the_local_runner_refuses_parallel_runs_with_a_clear_error(tmp_path: Path) -> None:
    class Gpu:
        name = "nanogpt"

    class Fake:
        track, runner = Gpu(), LocalRunner()

    with pytest.raises(ConfigError, match="slurm"):
        AutonomousAgent(Fake(), get_policy("flat", 2), Budget(nodes=2), parallel=2)
    with pytest.raises(ConfigError, match="at least 1"):
        AutonomousAgent(Fake(), get_policy("flat", 2), Budget(nodes=2), parallel=0)


# -- kill -9 mid-search, resume re-attaches every live run -----------------------------------------------------


def _start_driver(tmp_path: Path, server: OpenAIServer, parallel: int, nodes: int, runner: str,
                  env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The agent in its own process; what it prints goes to driver.out (a pipe nobody reads would block it
    once 64 KiB of warnings had filled it)."""
    root = Path(__file__).resolve().parents[1]
    with (tmp_path / "driver.out").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.parallel_driver", "--sessions", str(tmp_path / "sessions"),
             "--base-url", server.base_url, "--parallel", str(parallel), "--nodes", str(nodes), "--runner", runner],
            cwd=root, env={**(env or os.environ), "PYTHONPATH": str(root)}, stdout=out, stderr=subprocess.STDOUT)


def _printed(tmp_path: Path) -> str:
    path = tmp_path / "driver.out"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(nothing)"


def _session_dir(tmp_path: Path) -> Path | None:
    found = list((tmp_path / "sessions").glob("*/events.jsonl"))
    return found[0].parent if found else None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)  # no clean-up at all: the runs go on, the log has no session_ended
    proc.wait(timeout=30)


async def _resume_and_release(tmp_path: Path, server: OpenAIServer, runner, go: Path, parallel: int,
                              nodes: int, live: list[str]) -> tuple[Session, object]:
    session_dir = _session_dir(tmp_path)
    assert session_dir is not None and A.of_type(session_dir, "session_ended") == []
    resumed = Session.open(tmp_path / "sessions", session_dir.name, FixtureTrack(), provider(server.base_url),
                           runner=runner, options=SessionOptions(hang_timeout_s=300.0, edit_retries=0))
    assert sorted(e.get("run_id") for e in A.of_type(session_dir, "run_attached")) == sorted(live)
    agent = AutonomousAgent(resumed, get_policy("flat", nodes), Budget(nodes=nodes), parallel=parallel)
    task = asyncio.ensure_future(agent.run())
    try:
        await wait_for(lambda: set(live) <= set(agent.live_runs.values()), "the agent to adopt the re-attached runs")
        go.touch()
        summary = await asyncio.wait_for(task, DEADLINE_S)
    finally:
        go.touch()
        if not task.done():
            agent.stop()
            await asyncio.gather(task, return_exceptions=True)
    return resumed, summary


def _assert_adopted(session_dir: Path, live: list[str], nodes: int) -> None:
    created, scored, runs = A.nodes_created(session_dir), A.nodes_scored(session_dir), node_runs(session_dir)
    assert sorted(created) == list(range(nodes + 1)) and all(len(v) == 1 for v in scored.values())
    by_run = {runs[i][0].get("run_id"): i for i in runs}
    for run_id in live:  # re-attached and scored, never started again
        node = by_run[run_id]
        assert len(runs[node]) == 1 and scored[node][0].get("run_id") == run_id
        assert scored[node][0].get("outcome") == "reached_target"
    types = [e.type for e in A.events(session_dir)]
    assert "session_resumed" in types and types[-2:] == ["budget_exhausted", "session_ended"]
    assert_log_in_order(session_dir)


async def test_killed_agent_resumes_and_adopts_every_live_local_run(tmp_path: Path) -> None:
    go = tmp_path / "go"
    with OpenAIServer() as server:
        server.script([draft("0.95", go), draft("0.93", go), draft("0.91")])
        proc = _start_driver(tmp_path, server, parallel=2, nodes=3, runner="local")
        try:
            wait_for_sync(lambda: (d := _session_dir(tmp_path)) is not None and len(live_node_runs(d)) == 2,
                          "two live node runs in the driver")
            live = live_node_runs(_session_dir(tmp_path))
            _kill(proc)
            resumed, summary = await _resume_and_release(tmp_path, server, LocalRunner(), go, 2, 3, live)
        finally:
            go.touch()
            _kill(proc)
        assert len(server.completions) == 3  # nodes 1 and 2 were not asked for again
    assert summary.stop_reason == "budget"
    _assert_adopted(resumed.dir, live, nodes=3)
    scored = A.nodes_scored(resumed.dir)
    assert scored[3][0].get("final_val_loss") == pytest.approx(scored_loss(0.91), abs=1e-4)


# -- SLURM: K = 4 end to end, killed and resumed ---------------------------------------------------------------


async def test_four_nodes_as_slurm_jobs_killed_and_resumed(tmp_path: Path, slurm_cluster) -> None:  # noqa: F811
    """K = 4 on a one-node cluster with 2 CPUs: two node jobs run (waiting for `go`), two wait in SLURM's queue.
    The agent process is killed; the resumed one re-attaches all four jobs, adopts them as its live nodes and
    scores each from its own job, with queue time kept out of the accelerator time."""
    from copilot.core.runs.slurm import SlurmRunner

    go = tmp_path / "go"
    url = slurm_cluster.url()
    decays = ["0.95", "0.94", "0.93", "0.92"]
    with OpenAIServer() as server:
        server.script([draft(d, go) for d in decays])
        proc = _start_driver(tmp_path, server, parallel=4, nodes=4, runner=url, env=slurm_cluster.env)
        try:
            try:
                wait_for_sync(lambda: (d := _session_dir(tmp_path)) is not None and len(live_node_runs(d)) == 4,
                              "four node jobs submitted")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the agent printed:\n{_printed(tmp_path)}") from None
            live = live_node_runs(_session_dir(tmp_path))
            _kill(proc)
            runner = SlurmRunner(url, tool_env=slurm_cluster.env, state_poll_s=0.5)
            resumed, summary = await _resume_and_release(tmp_path, server, runner, go, 4, 4, live)
        finally:
            go.touch()
            _kill(proc)
            slurm_cluster.cancel_all()
    assert summary.stop_reason == "budget" and max_live(resumed.dir) == 4
    _assert_adopted(resumed.dir, live, nodes=4)
    scored, runs = A.nodes_scored(resumed.dir), node_runs(resumed.dir)
    for node, decay in zip((1, 2, 3, 4), decays):
        assert scored[node][0].get("final_val_loss") == pytest.approx(scored_loss(float(decay)), abs=1e-4)
        assert runs[node][0].get("queued") is True and runs[node][0].get("runner") == "slurm"
    finished = {e.get("run_id"): e for e in A.of_type(resumed.dir, "run_finished")}
    running = {e.get("run_id"): e for e in A.of_type(resumed.dir, "run_running")}
    assert set(live) <= set(running)  # every job left the queue in the log, before it finished
    queued_long = 0
    for run_id in live:
        info, end = read_run_info(resumed.dir / "runs" / run_id), finished[run_id]
        started = (resumed.dir / "runs" / run_id / "started").stat().st_mtime
        code_file = resumed.dir / "runs" / run_id / "exit_code"
        if code_file.exists():
            ended = code_file.stat().st_mtime
            assert end.get("wall_time_s") == pytest.approx(ended - started, abs=1e-3)  # run time: from the real start
        else:  # stopped at the target and KILLed before its trap wrote the status (KillWait=2 s, a loaded machine):
            # the end is SLURM's EndTime, in whole seconds
            assert 0 < end.get("wall_time_s") <= time.time() - started + 1.0
        assert end.get("accelerator_seconds") == pytest.approx(end.get("wall_time_s"), abs=1e-3)  # 1 GPU
        assert end.get("queue_time_s") == pytest.approx(started - info["queued_at"], abs=1e-2)
        queued_long += end.get("queue_time_s") > 0 and running[run_id].get("queue_time_s") > 0
    assert queued_long >= 2  # two jobs waited for the node's CPUs while the first two held them
    usage = BudgetUsage.from_events(A.events(resumed.dir))
    assert usage.accel_seconds == pytest.approx(sum(e.get("accelerator_seconds") for e in finished.values()))
    order = [e.get("node_id") for e in A.of_type(resumed.dir, "node_scored") if e.get("node_id")]
    by_finish = [next(i for i in runs if runs[i][0].get("run_id") == e.get("run_id"))
                 for e in A.of_type(resumed.dir, "run_finished") if e.get("run_id") in live]
    assert order == by_finish  # scored as the results arrived, not in creation order


# -- the app: queued / running / done per node, from the projection ----------------------------------------------


def _tree_labels(tree) -> list[str]:  # noqa: ANN001
    out, stack = [], list(tree.root.children)
    while stack:
        node = stack.pop(0)
        out.append(str(node.label))
        stack[:0] = list(node.children)
    return out


async def test_history_tree_and_runs_table_show_each_nodes_phase() -> None:
    from copilot.ui.app import CopilotApp
    from copilot.ui.panes.history import HistoryPane
    from copilot.ui.widgets.code_view import CodeView
    from copilot.ui.widgets.history_tree import HistoryTree
    from copilot.ui.widgets.run_table import RunTable
    from tests.support.ui import C1, START, EventMaker, wait_until

    c2 = "c" * 40
    m = EventMaker()
    m.add(s.SessionStarted(session_id="s-par", mode="auto", track="fixture", record=0, target_val_loss=2.0,
                           provider="openai", model="m", start_commit=START, branch="main", runner="slurm"))
    m.add(s.NodeCreated(node_id=0, commit=START, kind="root", branch="node-0"))
    m.add(s.RunStarted(run_id="r0", commit=START, node_id=0, started_by="agent", runner="slurm", queued=True))
    m.add(s.RunRunning(run_id="r0", started_at=m.events[-1].t, queue_time_s=0.4))
    m.add(s.RunFinished(run_id="r0", outcome="reached_target", reached_target=True, wall_time_s=1.0))
    m.add(s.NodeScored(node_id=0, run_id="r0", outcome="reached_target"))
    for node, sha in ((1, C1), (2, c2)):
        m.add(s.CommitCreated(sha=sha, parent=START, branch=f"node-{node}", provenance="ai", message=f"draft {node}"))
        m.add(s.NodeCreated(node_id=node, parent=0, commit=sha, kind="draft", branch=f"node-{node}"))
        m.add(s.RunStarted(run_id=f"r{node}", commit=sha, node_id=node, started_by="agent", runner="slurm",
                           queued=True))
    m.add(s.RunRunning(run_id="r1", started_at=m.events[-1].t, queue_time_s=0.5))
    app = CopilotApp()
    async with app.run_test(size=(160, 48)) as pilot:
        for event in m.events:
            app.ingest(event)
        table = app.screen.query_one(RunTable)
        tree = app.screen.query_one(HistoryTree)
        await wait_until(pilot, lambda: table.row_count == 3, what="three runs in the table")
        await wait_until(pilot, lambda: [table.get_row(r)[2].plain for r in ("r1", "r2")] == ["running", "queued"],
                         what="running and queued runs")
        assert table.get_row("r2")[1] == f"n2 {c2[:7]}"
        # the history tab is not shown yet: its pane keeps the newest view and leaves the tree alone (every
        # change to a Tree re-lays-out the whole screen, seen or not); showing the tab draws it
        pane = app.screen.query_one(HistoryPane)
        await wait_until(pilot, lambda: pane.pending_view is not None, what="the hidden history pane's view")
        assert not _tree_labels(tree)
        await pilot.press("5")
        await wait_until(pilot, lambda: any("node 2 · queued" in x for x in _tree_labels(tree)), what="node 2 queued")
        assert pane.pending_view is None
        assert any("node 1 · running" in x for x in _tree_labels(tree))
        assert any("run r2: queued" in x for x in _tree_labels(tree))
        more = EventMaker()
        more.events = list(m.events)
        later = [more.add(s.RunFinished(run_id="r1", outcome="reached_target", reached_target=True, wall_time_s=2.0)),
                 more.add(s.NodeScored(node_id=1, run_id="r1", outcome="reached_target")),
                 more.add(s.RunRunning(run_id="r2", started_at=more.events[-1].t))]
        for event in later:
            app.ingest(event)
        await wait_until(pilot, lambda: any("node 1 · done, reached_target" in x for x in _tree_labels(tree))
                         and any("node 2 · running" in x for x in _tree_labels(tree)), what="node 1 done, 2 running")
        # the runs pane redraws in its own turn (view.RedrawTurns), possibly a flush after the history tree
        await wait_until(pilot, lambda: table.get_row("r2")[2].plain == "running", what="run r2 running in the table")
        # hidden again, a change waits; a scroll elsewhere (after which Textual sends no Show for a tab shown)
        # must not keep it from the tree when the tab comes back
        await pilot.press("2")
        await wait_until(pilot, lambda: pane.out_of_sight, what="the script tab shown, history hidden")
        app.ingest(more.add(s.RunFinished(run_id="r2", outcome="cancelled", reached_target=False, wall_time_s=2.0)))
        await wait_until(pilot, lambda: pane.pending_view is not None, what="the hidden history pane's view")
        code = app.screen.query_one(CodeView)
        app.ui.script_text = "\n".join(f"line {i}" for i in range(300))
        app.mark_dirty("script")
        await wait_until(pilot, lambda: code.max_scroll_y > 0, what="the script long enough to scroll")
        code.scroll_to(y=code.max_scroll_y // 2, animate=False)
        await wait_until(pilot, lambda: code.scroll_y > 0, what="the script scrolled")
        await pilot.press("5")
        await wait_until(pilot, lambda: any("run r2: cancelled" in x for x in _tree_labels(tree)), what="r2 cancelled")


# -- the console script: --parallel on the micro track, K local CPU slots --------------------------------------


def _speedcopilot() -> str:
    script = Path(sys.executable).parent / "speedcopilot"
    return str(script) if script.exists() else "speedcopilot"


def test_cli_refuses_a_bad_parallel_count_in_one_line(tmp_path: Path) -> None:
    env = A.clean_env({"SPEEDCOPILOT_SESSION_DIR": tmp_path / "sessions"})
    done = subprocess.run([_speedcopilot(), "auto", "--track", "micro", "--provider", "oracle", "--parallel", "0"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout  # argparse: a usage error
    assert done.stderr.strip().splitlines()[-1] == "speedcopilot auto: error: argument --parallel: must be 1 or more, got 0"
    assert not (tmp_path / "sessions").exists() or not list((tmp_path / "sessions").iterdir())


@pytest.mark.slow
def test_cli_auto_parallel_on_micro_runs_on_cpu_slots(tmp_path: Path) -> None:
    from copilot.core.tracks.microdata import prepare_micro_data

    data, sessions = tmp_path / "data", tmp_path / "sessions"
    prepare_micro_data(data, size="small")
    env = A.clean_env({**A.micro_env(data), "SPEEDCOPILOT_SESSION_DIR": sessions, "COLUMNS": 200})
    done = subprocess.run([_speedcopilot(), "auto", "--track", "micro", "--record", "0", "--provider", "oracle",
                           "--policy", "flat", "--nodes", "2", "--parallel", "2"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 nodes at once" in done.stdout and "nodes: 2" in done.stdout
    session_dir = next(sessions.glob("*/events.jsonl")).parent
    scored = A.nodes_scored(session_dir)
    assert sorted(scored) == [0, 1, 2] and not any(v[0].get("buggy") for v in scored.values())
    slots = LocalRunner(slots=2).slots
    for e in A.of_type(session_dir, "run_started"):  # every run, the baseline too, on one CPU slot
        info = read_run_info(session_dir / "runs" / e.get("run_id"))
        assert tuple(info["cpus"]) == slots[info["cpu_slot"]]
    config = [e for e in A.of_type(session_dir, "note") if e.get("kind") == "agent_config"]
    assert config[-1].get("agent")["parallel"] == 2
    assert_log_in_order(session_dir)
