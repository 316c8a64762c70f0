"""Autonomous mode on real parts: git workspace, real runs, the offline oracle, a loopback OpenAI-compatible server,
and the `speedcopilot auto` console script (killed and resumed) on the micro track."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.agent.budget import Budget, BudgetUsage
from copilot.agent.loop import AutonomousAgent
from copilot.agent.policies import POLICIES, Policy, debuggable_leaves, get_policy, next_plan, step_rng
from copilot.agent.tree import AgentTree
from copilot.config import DEFAULT_PRICES
from copilot.core.errors import ConfigError
from copilot.core.session import schema as s
from copilot.core.session.events import Event
from copilot.core.llm.providers import OpenAIProvider, OracleProvider
from copilot.core.session import Session, SessionOptions
from copilot.resources import records_dir
from tests.support import agent as A
from tests.support.fixture_track import RECORD_0, FixtureTrack
from tests.support.openai_server import OpenAIServer, answer
from tests.support.waiting import HANG_GUARD_S, until, wait_until


def fixture_session(tmp_path: Path, provider=None, **options) -> Session:
    track = FixtureTrack()
    opts = {"mode": "auto", "edit_retries": 0, "hang_timeout_s": 30.0, **options}
    return Session.create(tmp_path / "sessions", track, 0, provider or OracleProvider(track, 0),
                          options=SessionOptions(**opts))


def openai_provider(server: OpenAIServer, model: str = "test-model") -> OpenAIProvider:
    return OpenAIProvider(model=model, api_key="sk-test-agent-0123456789", base_url=server.base_url,
                          max_retries=0, timeout_s=10, prices=DEFAULT_PRICES)


def ev(seq: int, type_: str, t: float = 0.0, **data) -> Event:
    """An event through the schema's typed body (a field the schema does not know fails here)."""
    return Event.of(seq, t, s.BODY_TYPES[type_](**data))


def script_at(session: Session, node_id: int) -> str:
    commit = A.nodes_created(session.dir)[node_id].get("commit")
    return session.workspace.read(A.SCRIPT, commit)


# -- policies, selection, budgets (pure folds over events) -----------------------------------------------


def test_scaffolds_match_the_benchmark_table() -> None:
    table = {name: (p.initial_drafts, p.branching, p.debug_prob, p.max_debug_depth) for name, p in POLICIES.items()}
    assert table["tree"] == (1, 3, 0.0, 0) and table["forest"] == (3, 3, 0.0, 0)
    assert table["aide"] == (3, 1, 0.5, 5) and table["multi-aide"] == (3, 3, 0.5, 5)
    assert table["greedy"] == (1, 1, 0.0, 0)
    flat = get_policy("flat", 7)
    assert (flat.initial_drafts, flat.iterates) == (7, False)
    with pytest.raises(ConfigError, match="unknown policy"):
        get_policy("mcts")
    assert Policy.from_dict(POLICIES["aide"].to_dict()) == POLICIES["aide"]


def _tree(nodes: list[dict]) -> AgentTree:
    tree, seq = AgentTree(), 0
    for n in nodes:
        seq += 1
        tree.apply(ev(seq, "node_created", node_id=n["id"], parent=n.get("parent"), commit=f"c{n['id']}",
                      branch=f"node-{n['id']}", kind=n.get("kind", "draft"), debug_depth=n.get("depth", 0),
                      step=n.get("step", 0), step_size=n.get("size", 1)))
        seq += 1
        tree.apply(ev(seq, "node_scored", node_id=n["id"], buggy=n.get("buggy", False), outcome="x",
                      reached_target=n.get("ttt") is not None, time_to_target_ms=n.get("ttt"),
                      final_val_loss=n.get("loss", 1.0)))
    return tree


def test_selection_expands_the_best_and_debugs_buggy_leaves_within_depth() -> None:
    aide = POLICIES["aide"]
    tree = _tree([
        {"id": 0, "kind": "root", "step": -1, "loss": 1.5},
        {"id": 1, "parent": 0, "size": 3, "loss": 1.40},
        {"id": 2, "parent": 0, "size": 3, "ttt": 900.0, "loss": 1.29},
        {"id": 3, "parent": 0, "size": 3, "buggy": True, "loss": None},
    ])
    assert tree.best().id == 2  # reaching the target beats a lower loss that does not
    assert [n.id for n in debuggable_leaves(tree, aide)] == [3]
    debug_seed = next(s for s in range(100) if step_rng(s, 1).random() < 0.5)
    improve_seed = next(s for s in range(100) if step_rng(s, 1).random() >= 0.5)
    plan = next_plan(tree, aide, debug_seed)
    assert (plan.parent, plan.kind, plan.step, plan.size) == (3, "debug", 1, 1)
    assert next_plan(tree, aide, improve_seed).parent == 2
    # A buggy leaf at the maximum debug depth is not debugged again; an interrupted step is finished first.
    deep = _tree([{"id": 0, "kind": "root", "step": -1}, {"id": 1, "parent": 0, "buggy": True, "depth": 5}])
    assert debuggable_leaves(deep, aide) == []
    part = _tree([{"id": 0, "kind": "root", "step": -1}, {"id": 1, "parent": 0, "size": 3}])
    assert next_plan(part, POLICIES["forest"], 0).kind == "draft"
    assert next_plan(_tree([{"id": 0, "kind": "root", "step": -1}, {"id": 1, "parent": 0, "size": 1}]),
                     get_policy("flat", 1), 0) is None


def test_budget_usage_counts_active_time_tokens_cost_and_accelerator_seconds() -> None:
    usage = BudgetUsage.from_events([
        ev(1, "session_started", t=0.0, gpus=8),
        ev(2, "suggestion_received", t=10.0, prompt_tokens=900, completion_tokens=100, cost_usd=0.5),
        ev(3, "node_created", t=11.0, node_id=0),
        ev(4, "node_created", t=12.0, node_id=1),
        ev(5, "run_finished", t=40.0, run_id="r1", wall_time_s=20.0),  # no accelerator_seconds: gpus × wall
        ev(6, "run_finished", t=41.0, run_id="r1", wall_time_s=20.0),  # finished twice (re-attach): once
        ev(7, "suggestion_failed", t=60.0, prompt_tokens=50, completion_tokens=0),  # price unknown
        # killed at t=60: the dead time until the resume at t=1000 is not charged
        ev(8, "session_resumed", t=1000.0),
        ev(9, "run_finished", t=1010.0, run_id="r2", accelerator_seconds=3.0),
        ev(10, "session_ended", t=1030.0),
    ])
    assert (usage.nodes, usage.tokens, usage.usd_unknown) == (1, 1050, True)
    assert usage.accel_seconds == pytest.approx(163.0) and usage.wall_s() == pytest.approx(90.0)
    assert Budget(nodes=1).exhausted(usage).startswith("nodes")
    assert Budget(nodes=5, tokens=1000).exhausted(usage).startswith("tokens")
    assert Budget(nodes=5, usd=0.5).exhausted(usage).startswith("usd")
    assert Budget(nodes=5, accel_seconds=160).exhausted(usage).startswith("accelerator")
    assert Budget(nodes=5, wall_minutes=1.0).exhausted(usage).startswith("wall")
    assert Budget(nodes=5, wall_minutes=2.0, tokens=2000, usd=1.0, accel_seconds=200).exhausted(usage) is None
    with pytest.raises(ConfigError):
        Budget(tokens=-1)


# -- live sessions on the fixture track ------------------------------------------------------------------


async def test_tree_marks_buggy_nodes_and_stops_on_the_node_budget(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        server.script([A.good_decay("0.94"), A.crash_edit(), A.nan_edit(frm="0.94"), A.malformed(), A.malformed()])
        session = fixture_session(tmp_path, openai_provider(server), edit_retries=1)
        summary = await AutonomousAgent(session, get_policy("tree"), Budget(nodes=4), seed=0).run()
        assert server.pending == 0 and not server.errors
        user_prompts = [r.messages[-1]["content"] for r in server.completions]
    created, scored = A.nodes_created(session.dir), A.nodes_scored(session.dir)
    assert {i: (e.get("parent"), e.get("kind")) for i, e in created.items()} == {
        0: (None, "root"), 1: (0, "draft"), 2: (1, "improve"), 3: (1, "improve"), 4: (1, "improve")}
    outcome = {i: (s[0].get("buggy"), s[0].get("outcome")) for i, s in scored.items()}
    assert outcome == {0: (False, "reached_target"), 1: (False, "reached_target"), 2: (True, "crashed"),
                       3: (True, "diverged"), 4: (True, "suggestion_failed")}
    assert created[4].get("commit") is None and "no" in scored[4][0].get("error").lower()
    assert scored[1][0].get("time_to_target_ms") < scored[0][0].get("time_to_target_ms")
    assert "DECAY = 0.94" in script_at(session, 1) and "raise SystemExit(1)" in script_at(session, 2)
    assert summary.stop_reason == "budget" and summary.best.id == 1 and summary.buggy == 3
    decided = [d for e in A.of_type(session.dir, "suggestion_decided") for d in e.body.decisions]
    assert decided and all(d.action == "accept" and d.decision_time_s == 0 for d in decided)
    types = [e.type for e in A.events(session.dir)]
    assert types[-2:] == ["budget_exhausted", "session_ended"]
    assert A.of_type(session.dir, "session_ended")[-1].get("reason") == "budget_exhausted"
    # The model sees the parent's code and the search so far; the first prompt of node 2 names its job.
    assert "Improve on node 1" in user_prompts[1] and "Search so far" in user_prompts[1]
    assert "DECAY = 0.94" in user_prompts[1] and "DECAY = 0.97" in user_prompts[0]
    assert not session.log.is_open


async def test_forest_drafts_three_then_expands_the_best(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        server.script([A.good_decay("0.96"), A.good_decay("0.94"), A.crash_edit(),
                       A.good_decay("0.92", frm="0.94"), A.good_decay("0.93", frm="0.94")])
        session = fixture_session(tmp_path, openai_provider(server))
        summary = await AutonomousAgent(session, get_policy("forest"), Budget(nodes=5), seed=3).run()
    created, scored = A.nodes_created(session.dir), A.nodes_scored(session.dir)
    assert [created[i].get("parent") for i in (1, 2, 3)] == [0, 0, 0]
    assert all(created[i].get("kind") == "draft" for i in (1, 2, 3))
    assert [(created[i].get("parent"), created[i].get("kind")) for i in (4, 5)] == [(2, "improve")] * 2
    assert scored[3][0].get("outcome") == "crashed" and scored[3][0].get("buggy") is True
    assert summary.best.id == 4 and summary.best.time_to_target_ms == pytest.approx(100.0)


@pytest.mark.parametrize("step", ["debug", "improve"])
async def test_aide_debugs_a_buggy_leaf_or_expands_the_best(tmp_path: Path, step: str) -> None:
    seed = next(s for s in range(100) if (step_rng(s, 1).random() < 0.5) == (step == "debug"))
    fourth = A.fix_crash() if step == "debug" else A.good_decay("0.92", frm="0.94")
    with OpenAIServer() as server:
        server.script([A.good_decay("0.96"), A.crash_edit(), A.good_decay("0.94"), fourth])
        session = fixture_session(tmp_path, openai_provider(server))
        await AutonomousAgent(session, get_policy("aide"), Budget(nodes=4), seed=seed).run()
        last_prompt = server.completions[-1].messages[-1]["content"]
    node4 = A.nodes_created(session.dir)[4]
    scored4 = A.nodes_scored(session.dir)[4][0]
    if step == "debug":
        assert (node4.get("parent"), node4.get("kind"), node4.get("debug_depth")) == (2, "debug", 1)
        assert "Node 2 is buggy" in last_prompt and "raise SystemExit(1)" in last_prompt
        assert script_at(session, 4) == RECORD_0  # the fix undid the breakage on the buggy node's code
    else:
        assert (node4.get("parent"), node4.get("kind"), node4.get("debug_depth")) == (3, "improve", 0)
    assert scored4.get("buggy") is False


async def test_guard_refusal_is_a_buggy_node_without_a_run(tmp_path: Path) -> None:
    line = '            print(f"step:{step}/{STEPS} val_loss:{loss:.4f} train_time:{train_time_ms:.0f}ms "'
    cheat = line.replace("val_loss:{loss:.4f}", "val_loss:{loss * 0.5:.4f}")
    with OpenAIServer() as server:
        server.script([A.block(line, cheat, "Report half the loss.")])
        session = fixture_session(tmp_path, openai_provider(server))
        await AutonomousAgent(session, get_policy("greedy"), Budget(nodes=1)).run()
    node1 = A.nodes_created(session.dir)[1]
    scored = A.nodes_scored(session.dir)[1][0]
    assert scored.get("outcome") == "guard_refused" and scored.get("buggy") is True
    assert any(g.get("blocking") for g in A.of_type(session.dir, "guard_report"))
    assert [r.get("commit") for r in A.of_type(session.dir, "run_started")] == [session.state.start_commit]
    assert node1.get("commit") is not None


async def test_a_failing_baseline_or_provider_ends_the_search_with_a_clear_error(tmp_path: Path) -> None:
    track = A.broken_fixture_track()
    session = Session.create(tmp_path / "a", track, 0, OracleProvider(track, 0),
                             options=SessionOptions(mode="auto", hang_timeout_s=30.0))
    summary = await AutonomousAgent(session, get_policy("tree"), Budget(nodes=5)).run()
    assert summary.stop_reason == "baseline_failed" and "starting record itself failed" in summary.detail
    assert A.nodes_scored(session.dir)[0][0].get("outcome") == "crashed" and summary.nodes == []
    assert A.of_type(session.dir, "session_ended")[-1].get("reason") == "baseline_failed"
    with OpenAIServer() as server:
        server.script([{"status": 401}] * 3)
        session = fixture_session(tmp_path / "b", openai_provider(server))
        summary = await AutonomousAgent(session, get_policy("forest"), Budget(nodes=10)).run()
    assert summary.stop_reason == "provider_failed" and len(summary.nodes) == 3
    assert all(n.outcome == "suggestion_failed" and n.buggy for n in summary.nodes)
    assert "sk-test-agent" not in (session.dir / "events.jsonl").read_text()


async def test_token_budget_and_dollar_budget_stop_the_search(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 100_000, "completion_tokens": 10_000}  # gpt-4o-mini: $0.021 per answer
    answers = [answer(A.good_decay("0.94"), **usage), answer(A.good_decay("0.92", frm="0.94"), **usage),
               answer(A.good_decay("0.90", frm="0.92"), **usage)]
    for name, budget in (("tokens", Budget(nodes=10, tokens=200_000)), ("usd", Budget(nodes=10, usd=0.03))):
        with OpenAIServer() as server:
            server.script(answers)
            session = fixture_session(tmp_path / name, openai_provider(server, "gpt-4o-mini"))
            summary = await AutonomousAgent(session, get_policy("greedy"), budget).run()
            assert len(server.completions) == 2
        exhausted = A.of_type(session.dir, "budget_exhausted")
        assert len(exhausted) == 1 and exhausted[0].get("reason").startswith(name)
        assert summary.stop_reason == "budget" and len(summary.nodes) == 2
        assert summary.usage["tokens"] == 220_000 and summary.usage["usd"] == pytest.approx(0.042)
        assert [e.type for e in A.events(session.dir)][-1] == "session_ended"


async def test_accelerator_budget_cancels_the_run_in_flight(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        server.script([A.slow_edit(0.2)])  # 30 steps × 0.2 s: far over the budget
        session = fixture_session(tmp_path, openai_provider(server))
        summary = await AutonomousAgent(session, get_policy("greedy"), Budget(nodes=5, accel_seconds=1.5)).run()
    scored = A.nodes_scored(session.dir)[1][0]
    assert (scored.get("outcome"), scored.get("reason"), scored.get("buggy")) == ("cancelled", "budget", True)
    assert summary.stop_reason == "budget" and summary.detail.startswith("accelerator")
    assert A.of_type(session.dir, "budget_exhausted")[0].get("usage")["accel_seconds"] >= 1.5


async def test_pause_resume_and_take_over(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        server.script([A.good_decay("0.94"), A.good_decay("0.92", frm="0.94"), A.good_decay("0.9", frm="0.92")])
        session = fixture_session(tmp_path, openai_provider(server))
        agent = AutonomousAgent(session, get_policy("greedy"), Budget(nodes=5))
        paused_requests: list[int] = []
        paused_reports: list[str] = []

        def on_progress(p) -> None:
            if p.activity == "paused":
                paused_reports.append(p.activity)  # once from pause(), once more when the loop reaches its gate
            if p.activity == "scored node 1: reached_target" and not paused_requests:
                agent.pause()
                paused_requests.append(len(server.completions))
            if p.activity == "scored node 2: reached_target":
                agent.take_over()

        async def release() -> None:
            await until(lambda: len(paused_reports) >= 2, "the agent to wait at its gate")
            paused_requests.append(len(server.completions))  # from the gate on it can ask nothing until resumed
            agent.resume()

        releaser = asyncio.create_task(release())
        summary = await asyncio.wait_for(agent.run(on_progress=on_progress), timeout=HANG_GUARD_S)
        await releaser
        assert paused_requests == [1, 1]  # nothing was asked while paused
        assert len(server.completions) == 2
    assert summary.stop_reason == "taken_over" and len(summary.nodes) == 2
    assert session.log.is_open and session.state.mode == "copilot"
    kinds = [e.get("kind") for e in A.of_type(session.dir, "note")]
    assert "agent_paused" in kinds and "agent_resumed" in kinds
    assert A.of_type(session.dir, "mode_changed")[-1].get("mode") == "copilot"
    await session.close()


async def test_resume_after_kill_reattaches_and_redoes_nothing(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    with OpenAIServer() as server:
        server.script([A.held_edit(hold), A.good_decay("0.94")])
        session = fixture_session(tmp_path, openai_provider(server))
        agent = AutonomousAgent(session, get_policy("greedy"), Budget(nodes=2))

        def on_progress(p) -> None:
            if p.activity == "running node 1":
                agent.stop()

        summary = await agent.run(on_progress=on_progress)
        assert summary.stop_reason == "stopped"
        live = session.live_runs()
        assert len(live) == 1
        session.abandon()  # the process dies: no session_ended, no watcher, the run keeps going
        hold.unlink()
        resumed = Session.open(tmp_path / "sessions", session.id, FixtureTrack(), openai_provider(server),
                               options=SessionOptions(hang_timeout_s=30.0, edit_retries=0))
        summary = await AutonomousAgent(resumed, get_policy("greedy"), Budget(nodes=2)).run()
        assert len(server.completions) == 2  # node 1's suggestion was not asked again
    created, scored = A.nodes_created(resumed.dir), A.nodes_scored(resumed.dir)
    assert sorted(created) == [0, 1, 2] and all(len(v) == 1 for v in scored.values())
    assert len([e for e in A.of_type(resumed.dir, "node_created") if e.get("node_id") == 1]) == 1
    runs_by_commit: dict[str, int] = {}
    for e in A.of_type(resumed.dir, "run_started"):
        runs_by_commit[e.get("commit")] = runs_by_commit.get(e.get("commit"), 0) + 1
    assert set(runs_by_commit.values()) == {1} and len(runs_by_commit) == 3
    assert [e.get("run_id") for e in A.of_type(resumed.dir, "run_attached")] == live
    assert scored[1][0].get("run_id") == live[0] and scored[1][0].get("outcome") == "reached_target"
    assert created[2].get("parent") == 1 or created[2].get("parent") == 0
    assert summary.stop_reason == "budget"
    assert [e.type for e in A.events(resumed.dir)][-2:] == ["budget_exhausted", "session_ended"]


# -- the console script on the micro track, killed and resumed ----------------------------------------------


def _speedcopilot() -> str:
    script = Path(sys.executable).parent / "speedcopilot"
    return str(script) if script.exists() else "speedcopilot"


def _kill_leftover_runs(sessions: Path) -> None:
    for info in sessions.glob("*/runs/*/run.json"):
        if (info.parent / "exit_code").exists():
            continue
        try:
            os.killpg(int(json.loads(info.read_text())["pgid"]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, KeyError, ValueError):
            pass


@pytest.mark.slow
def test_cli_auto_on_micro_with_oracle_killed_and_resumed(tmp_path: Path) -> None:
    from copilot.core.tracks.microdata import prepare_micro_data

    data, sessions = tmp_path / "data", tmp_path / "sessions"
    prepare_micro_data(data, size="small")
    env = A.clean_env({**A.micro_env(data), "SPEEDCOPILOT_SESSION_DIR": sessions})
    cmd = [_speedcopilot(), "auto", "--track", "micro", "--record", "0", "--provider", "oracle", "--nodes", "2",
           "--policy", "tree"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def node1_running() -> bool:
            dirs = list(sessions.glob("*/events.jsonl"))
            if not dirs:
                return False
            created = A.nodes_created(dirs[0].parent)
            commit = created[1].get("commit") if 1 in created else None
            return commit is not None and any(e.get("commit") == commit
                                              for e in A.of_type(dirs[0].parent, "run_started"))

        wait_until(lambda: node1_running() or proc.poll() is not None, "node 1's run to start, or the CLI to exit")
        assert node1_running(), proc.stdout.read1().decode() if proc.poll() is not None else ""
        proc.kill()  # SIGKILL: no clean-up at all; node 1's run keeps going in its own process group
        proc.wait(timeout=10)
        session_dir = next(sessions.glob("*/events.jsonl")).parent
        assert A.of_type(session_dir, "session_ended") == []
        done = subprocess.run([_speedcopilot(), "auto", "--resume", "last"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        _kill_leftover_runs(sessions)
    created, scored = A.nodes_created(session_dir), A.nodes_scored(session_dir)
    assert sorted(created) == [0, 1, 2] and all(len(v) == 1 for v in scored.values())
    node1_runs = [e for e in A.of_type(session_dir, "run_started") if e.get("commit") == created[1].get("commit")]
    assert len(node1_runs) == 1  # re-attached, not run again
    assert scored[1][0].get("run_id") == node1_runs[0].get("run_id")
    assert scored[1][0].get("buggy") is False and math.isfinite(scored[1][0].get("final_val_loss"))
    from copilot.core.session.workspace import Workspace

    workspace = Workspace.open(session_dir / "workspace")
    record_1 = (records_dir() / "micro" / "record_1" / "train_gpt.py").read_text()
    assert workspace.read("train_gpt.py", created[1].get("commit")) == record_1, \
        "node 1 is not record 1 (or records/micro/record_1 was edited while the test ran)"
    # Tiny runs reach no target: the tree expands the node with the lower final loss. From the baseline the
    # oracle proposes record 1 again; from record 1 it has nothing left to propose.
    best_first = min((0, 1), key=lambda i: (scored[i][0].get("final_val_loss"), i))
    assert created[2].get("parent") == best_first
    if best_first == 0:
        assert workspace.read("train_gpt.py", created[2].get("commit")) == record_1
    else:
        assert scored[2][0].get("outcome") == "suggestion_failed"
    assert "nodes: 2" in done.stdout and "budget" in done.stdout, done.stdout
    types = [e.type for e in A.events(session_dir)]
    assert "session_resumed" in types and types[-2:] == ["budget_exhausted", "session_ended"]


async def test_an_exhausted_oracle_stops_the_agent_instead_of_burning_nodes(tmp_path: Path) -> None:
    """Greedy on the oracle: after the known change is applied there is nothing left to propose; the agent
    stops with that reason, and no node is marked buggy for it."""
    session = fixture_session(tmp_path)
    summary = await AutonomousAgent(session, get_policy("greedy"), Budget(nodes=4), seed=0).run()
    assert summary.stop_reason == "provider_exhausted" and "nothing left to propose" in summary.detail
    assert summary.buggy == 0
    assert sorted(A.nodes_created(session.dir)) == [0, 1]  # the baseline and the one node with the known change
    assert A.of_type(session.dir, "session_ended")[-1].get("reason") == "provider_exhausted"


async def test_the_config_may_let_the_agent_train_a_blocked_commit_and_that_is_logged(tmp_path: Path) -> None:
    line = '            print(f"step:{step}/{STEPS} val_loss:{loss:.4f} train_time:{train_time_ms:.0f}ms "'
    cheat = line.replace("val_loss:{loss:.4f}", "val_loss:{loss * 0.5:.4f}")
    with OpenAIServer() as server:
        server.script([A.block(line, cheat, "Report half the loss.")])
        session = fixture_session(tmp_path, openai_provider(server))
        await AutonomousAgent(session, get_policy("greedy"), Budget(nodes=1), allow_guard_override=True).run()
    node1 = A.nodes_created(session.dir)[1]
    assert [r.get("commit") for r in A.of_type(session.dir, "run_started")] == [session.state.start_commit,
                                                                                node1.get("commit")]
    (override,) = A.of_type(session.dir, "guard_override")
    assert override.get("choice") == "run" and override.get("commit") == node1.get("commit")
