"""The session loop end to end on real parts: git workspace, offline oracle, loopback LLM server, real runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from copilot.core.errors import EditApplyError, ProviderError, SessionLockedError, WorkspaceError
from copilot.core.session.events import EVENTS_FILE, read_events
from copilot.core.llm.providers import OpenAIProvider, OracleProvider
from copilot.core.session import HunkDecision, Session, SessionOptions, load_state
from tests.support.fixture_track import RECORD_0, RECORD_1, FixtureTrack

SCRIPT = "train_gpt.py"


def new_session(tmp_path: Path, provider=None, **options) -> Session:
    track = FixtureTrack()
    provider = provider or OracleProvider(track, 0)
    return Session.create(tmp_path / "sessions", track, 0, provider, options=SessionOptions(**options))


def event_types(session: Session) -> list[str]:
    return [e.type for e in read_events(session.dir / EVENTS_FILE).events]


async def test_create_seeds_workspace_and_logs_start(tmp_path: Path) -> None:
    session = new_session(tmp_path, hint_levels=(2,), participant="p01")
    try:
        assert session.script_text() == RECORD_0
        started = read_events(session.dir / EVENTS_FILE).events[0]
        assert started.type == "session_started"
        assert started.get("record") == 0 and started.get("target_val_loss") == 2.0
        assert started.get("offline") is True and "oracle" in started.get("provider_label")
        assert started.get("start_commit") == session.workspace.head_sha()
        assert started.get("hint_levels") == [2] and started.get("participant") == "p01"
        assert started.get("next_record_time_s") == 0.12
    finally:
        session.close()


async def test_accept_reject_with_feedback_and_edit_make_one_commit(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        deltas: list[str] = []
        view = await session.request_suggestion(on_delta=deltas.append)
        assert deltas, "the oracle streams its answer"
        assert len(view.hunks) == 3
        by_text = {h.index: h for h in view.hunks}
        steps = next(i for i, h in by_text.items() if "STEPS" in h.search)
        lr = next(i for i, h in by_text.items() if "LR" in h.search)
        decay = next(i for i, h in by_text.items() if "DECAY" in h.search)
        edited = by_text[decay].replace.replace("0.94", "0.95")
        commit = session.decide(view.id, [
            HunkDecision(lr, "accept", decision_time_s=1.5),
            HunkDecision(steps, "reject", feedback="keep 30 steps", decision_time_s=2.0),
            HunkDecision(decay, "edit", edited_replace=edited, decision_time_s=3.0),
        ])
        assert commit is not None and commit.provenance == "ai+human-edit"
        text = session.script_text()
        assert "LR = 0.003" in text and "STEPS = 30" in text and "DECAY = 0.95" in text
        info = session.workspace.commit_info(commit.sha)
        assert info.trailers["Provenance"] == "ai+human-edit"
        assert info.trailers["Suggestion-Id"] == view.id
        assert not session.workspace.is_dirty()
        types = event_types(session)
        assert types[:4] == ["session_started", "suggestion_requested", "suggestion_received", "hunk_decided"]
        assert types.count("hunk_decided") == 3 and "feedback_given" in types and types[-1] == "commit_created"
        assert session.state.suggestions[view.id].status == "decided"
    finally:
        session.close()


async def test_oracle_accept_all_reproduces_next_record(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        view = await session.request_suggestion()
        commit = session.decide(view.id, [HunkDecision(h.index, "accept") for h in view.hunks])
        assert commit is not None and commit.provenance == "ai"
        assert session.script_text() == RECORD_1
    finally:
        session.close()


async def test_hunk_that_no_longer_applies_leaves_tree_and_log_consistent(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        view = await session.request_suggestion()
        decay = next(h.index for h in view.hunks if "DECAY" in h.search)
        changed = session.script_text().replace(
            "DECAY = 0.97  # loss multiplier per step", "LOSS_MULTIPLIER = 0.5\nDECAY = LOSS_MULTIPLIER"
        )
        (session.workspace.path / SCRIPT).write_text(changed)  # the human edits while the suggestion waits
        with pytest.raises(WorkspaceError, match="uncommitted"):
            session.decide(view.id, [HunkDecision(decay, "accept")])
        assert (session.workspace.path / SCRIPT).read_text() == changed
        session.commit_external_edit("Human rewrote the decay")
        head = session.workspace.head_sha()
        with pytest.raises(EditApplyError):
            session.decide(view.id, [HunkDecision(decay, "accept")])
        assert session.workspace.head_sha() == head and session.script_text() == changed
        assert not session.workspace.is_dirty()
        assert session.state.suggestions[view.id].status == "received"  # still open for decisions
        assert "error" in event_types(session)
    finally:
        session.close()


async def test_run_reaches_target_and_streams_metrics(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        run = session.start_run()
        lines: list[str] = []
        result = await session.watch_run(run.run_id, on_line=lines.append)
        assert result.outcome.value == "reached_target"
        assert result.time_to_target_ms == pytest.approx(250.0)
        view = session.state.runs[run.run_id]
        assert view.status == "reached_target" and len(view.val_points) == 7
        assert any("val_loss" in line for line in lines)
        assert (session.dir / "runs" / run.run_id / "output.log").exists()
        assert run.run_id in session.workspace.run_notes(run.commit)
        finished = [e for e in read_events(session.dir / EVENTS_FILE).events if e.type == "run_finished"][0]
        assert finished.get("reached_target") is True and finished.get("accelerator_seconds") > 0
    finally:
        session.close()


async def test_crashing_script_is_reported_with_error_tail(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        text = session.script_text().replace("def main() -> None:", "def main() -> None:\n    raise ValueError('boom')")
        (session.workspace.path / SCRIPT).write_text(text)
        assert session.check_external_edit() is not None
        session.commit_external_edit("Break it on purpose")
        assert session.state.commits[-1].provenance == "human"
        run = session.start_run()
        result = await session.watch_run(run.run_id)
        assert result.outcome.value == "crashed" and result.exit_code == 1
        assert any("boom" in line for line in result.error_tail)
    finally:
        session.close()


async def test_dirty_tree_refuses_a_run(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        (session.workspace.path / SCRIPT).write_text("print('uncommitted')\n")
        with pytest.raises(WorkspaceError):
            session.start_run()
        assert (session.workspace.path / SCRIPT).read_text() == "print('uncommitted')\n"
    finally:
        session.close()


async def test_undo_and_branch_from_earlier_commit(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        view = await session.request_suggestion()
        session.decide(view.id, [HunkDecision(h.index, "accept") for h in view.hunks])
        undo = session.undo()
        assert undo.provenance == "revert" and session.script_text() == RECORD_0
        start = session.state.start_commit
        branch = session.checkout(start)
        assert session.state.branch == branch and session.state.head == start
        assert len(session.workspace.log()) == 3
    finally:
        session.close()


async def test_second_open_is_refused_and_resume_reattaches_a_live_run(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    sessions_root = session.dir.parent
    run = session.start_run()
    with pytest.raises(SessionLockedError):
        Session.open(sessions_root, session.id, FixtureTrack(), OracleProvider(FixtureTrack(), 0))
    session.close(reason="ui crashed")  # the run keeps going without its watcher
    resumed = Session.open(sessions_root, session.id, FixtureTrack(), OracleProvider(FixtureTrack(), 0))
    try:
        assert run.run_id in resumed.live_runs() or resumed.state.runs[run.run_id].status != "running"
        if run.run_id in resumed.live_runs():
            result = await resumed.watch_run(run.run_id)
            assert result.outcome.value == "reached_target"
        state, problems = load_state(resumed.dir)
        assert state.runs[run.run_id].status == "reached_target" and problems == []
    finally:
        resumed.close()


async def test_provider_failure_is_logged_and_loses_nothing(tmp_path: Path) -> None:
    from tests.support.openai_server import OpenAIServer

    with OpenAIServer() as server:
        server.script([{"status": 401}])
        provider = OpenAIProvider(model="test-model", api_key="sk-test-secret-key-123456", base_url=server.base_url,
                                  max_retries=0, timeout_s=5)
        session = new_session(tmp_path, provider=provider)
        try:
            with pytest.raises(ProviderError):
                await session.request_suggestion()
            assert session.script_text() == RECORD_0
            log_text = (session.dir / EVENTS_FILE).read_text()
            assert "suggestion_failed" in log_text and "sk-test-secret-key-123456" not in log_text
            assert session.state.suggestions["s1"].status == "failed"
        finally:
            session.close()


async def test_cancel_stops_a_run(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        slow = session.script_text().replace("SLEEP_S = 0.01", "SLEEP_S = 0.5")
        (session.workspace.path / SCRIPT).write_text(slow)
        session.commit_external_edit("slow")
        run = session.start_run()
        watcher = asyncio.create_task(session.watch_run(run.run_id))
        await asyncio.sleep(0.5)
        session.cancel_run(run.run_id)
        result = await asyncio.wait_for(watcher, timeout=20)
        assert result.outcome.value == "cancelled"
    finally:
        session.close()


async def test_a_cut_off_suggestion_is_reviewable_and_logged_with_its_finish_reason(tmp_path: Path) -> None:
    from copilot.core.edits import blocks_from_texts
    from copilot.core.llm.providers import Completion, ReplayProvider

    blocks = blocks_from_texts(RECORD_0, RECORD_1, SCRIPT)
    cut = "Three changes.\n\n" + blocks[: blocks.rindex(">>>>>>> REPLACE") - 3]  # the last block is cut off
    provider = ReplayProvider([Completion(cut, "replay", 0, 0, 0.0, 0.0, "length")] * 2)
    session = new_session(tmp_path, provider=provider)
    try:
        view = await session.request_suggestion()
        assert view.truncated and view.finish_reason == "length" and view.dropped_blocks == 1
        assert len(view.hunks) == 2  # the complete blocks, still reviewable
        received = next(e for e in read_events(session.dir / EVENTS_FILE).events if e.type == "suggestion_received")
        assert received.get("finish_reason") == "length" and received.get("truncated") is True
        assert received.get("format") == "search_replace"
        session.log.append("mode_changed", mode="auto", previous="copilot", by="test")
        with pytest.raises(EditApplyError, match="cut off by the token limit"):
            await session.request_suggestion()  # a policy never takes a cut-off answer
    finally:
        session.close()
