"""The session loop end to end on real parts: git workspace, offline oracle, loopback LLM server, real runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from copilot.core.errors import EditApplyError, ProviderError, SessionLockedError, WorkspaceError
from copilot.core.session.events import EVENTS_FILE, read_events
from copilot.core.llm.providers import OpenAIProvider, OracleProvider
from copilot.core.session import HunkDecision, Session, SessionOptions, commit_message, load_state
from copilot.core.session import schema as s
from tests.support.fixture_track import RECORD_0, RECORD_1, FixtureTrack
from tests.support.waiting import HANG_GUARD_S

SCRIPT = "train_gpt.py"


def new_session(tmp_path: Path, provider=None, **options) -> Session:
    track = FixtureTrack()
    provider = provider or OracleProvider(track, 0)
    return Session.create(tmp_path / "sessions", track, 0, provider, options=SessionOptions(**options))


async def _until(predicate, what: str = "condition") -> None:
    """Yield to the loop until predicate() holds (generous deadline: the machine may be loaded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def event_types(session: Session) -> list[str]:
    return [e.type for e in read_events(session.dir / EVENTS_FILE).events]


async def test_create_seeds_workspace_and_logs_start(tmp_path: Path) -> None:
    session = new_session(tmp_path, hint_levels=(2,), participant="p01")
    try:
        assert await session.script_text() == RECORD_0
        started = read_events(session.dir / EVENTS_FILE).events[0]
        assert started.type == "session_started"
        assert started.get("record") == 0 and started.get("target_val_loss") == 2.0
        assert started.get("offline") is True and "oracle" in started.get("provider_label")
        assert started.get("start_commit") == session.workspace.head_sha()
        assert started.get("hint_levels") == [2] and started.get("participant") == "p01"
        assert started.get("next_record_time_s") == 0.12
    finally:
        await session.close()


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
        commit = await session.decide(view.id, [
            HunkDecision(lr, "accept", decision_time_s=1.5),
            HunkDecision(steps, "reject", feedback="keep 30 steps", decision_time_s=2.0),
            HunkDecision(decay, "edit", edited_replace=edited, decision_time_s=3.0),
        ])
        assert commit is not None and commit.provenance == "ai+human-edit"
        text = await session.script_text()
        assert "LR = 0.003" in text and "STEPS = 30" in text and "DECAY = 0.95" in text
        info = session.workspace.commit_info(commit.sha)
        assert info.trailers["Provenance"] == "ai+human-edit"
        assert info.trailers["Suggestion-Id"] == view.id
        assert not session.workspace.is_dirty()
        types = event_types(session)
        # the decisions are logged with the commit they produced, never before it
        assert types == ["session_started", "suggestion_requested", "suggestion_received", "commit_created",
                         "suggestion_decided"]
        decided = read_events(session.dir / EVENTS_FILE).events[-1].body
        assert decided.commit == commit.sha and {d.feedback for d in decided.decisions} >= {"keep 30 steps"}
        assert info.trailers["Hunks-Accepted"] == f"{lr + 1}, {decay + 1} of 3"
        assert not info.subject.endswith(" ") and len(info.subject) <= 72
        assert session.state.suggestions[view.id].status == "decided"
    finally:
        await session.close()


async def test_oracle_accept_all_reproduces_next_record(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        view = await session.request_suggestion()
        commit = await session.decide(view.id, [HunkDecision(h.index, "accept") for h in view.hunks])
        assert commit is not None and commit.provenance == "ai"
        assert await session.script_text() == RECORD_1
    finally:
        await session.close()


async def test_hunk_that_no_longer_applies_leaves_tree_and_log_consistent(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        view = await session.request_suggestion()
        decay = next(h.index for h in view.hunks if "DECAY" in h.search)
        changed = (await session.script_text()).replace(
            "DECAY = 0.97  # loss multiplier per step", "LOSS_MULTIPLIER = 0.5\nDECAY = LOSS_MULTIPLIER"
        )
        (session.workspace.path / SCRIPT).write_text(changed)  # the human edits while the suggestion waits
        with pytest.raises(WorkspaceError, match="uncommitted"):
            await session.decide(view.id, [HunkDecision(decay, "accept")])
        assert (session.workspace.path / SCRIPT).read_text() == changed
        await session.commit_external_edit("Human rewrote the decay")
        head = session.workspace.head_sha()
        with pytest.raises(EditApplyError):
            await session.decide(view.id, [HunkDecision(decay, "accept")])
        assert session.workspace.head_sha() == head and await session.script_text() == changed
        assert not session.workspace.is_dirty()
        assert session.state.suggestions[view.id].status == "received"  # still open for decisions
        assert "commit_failed" in event_types(session) and "suggestion_decided" not in event_types(session)
    finally:
        await session.close()


async def test_run_reaches_target_and_streams_metrics(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        run = await session.start_run()
        lines: list[str] = []
        session.subscribe_lines(lambda _run, line: lines.append(line))
        result = await session.wait_run(run.run_id)
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
        await session.close()


async def test_crashing_script_is_reported_with_error_tail(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        text = (await session.script_text()).replace("def main() -> None:",
                                                     "def main() -> None:\n    raise ValueError('boom')")
        (session.workspace.path / SCRIPT).write_text(text)
        assert await session.check_external_edit() is not None
        await session.commit_external_edit("Break it on purpose")
        assert session.state.commits[-1].provenance == "human"
        run = await session.start_run()
        result = await session.wait_run(run.run_id)
        assert result.outcome.value == "crashed" and result.exit_code == 1
        assert any("boom" in line for line in result.error_tail)
    finally:
        await session.close()


async def test_dirty_tree_refuses_a_run(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        (session.workspace.path / SCRIPT).write_text("print('uncommitted')\n")
        with pytest.raises(WorkspaceError):
            await session.start_run()
        assert (session.workspace.path / SCRIPT).read_text() == "print('uncommitted')\n"
    finally:
        await session.close()


async def test_undo_and_branch_from_earlier_commit(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        view = await session.request_suggestion()
        await session.decide(view.id, [HunkDecision(h.index, "accept") for h in view.hunks])
        undo = await session.undo()
        assert undo.provenance == "revert" and await session.script_text() == RECORD_0
        start = session.state.start_commit
        branch = await session.checkout(start)
        assert session.state.branch == branch and session.state.head == start
        assert len(session.workspace.log()) == 3
    finally:
        await session.close()


async def test_second_open_is_refused_and_resume_reattaches_a_live_run(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    sessions_root = session.dir.parent
    run = await session.start_run()
    with pytest.raises(SessionLockedError):
        Session.open(sessions_root, session.id, FixtureTrack(), OracleProvider(FixtureTrack(), 0))
    await session.close(reason="ui crashed")  # the run keeps going without its watcher
    resumed = Session.open(sessions_root, session.id, FixtureTrack(), OracleProvider(FixtureTrack(), 0))
    try:
        assert run.run_id in resumed.live_runs() or resumed.state.runs[run.run_id].status != "running"
        if run.run_id in resumed.resume_watching():
            result = await resumed.wait_run(run.run_id)
            assert result.outcome.value == "reached_target"
        state, problems = load_state(resumed.dir)
        assert state.runs[run.run_id].status == "reached_target" and problems == []
    finally:
        await resumed.close()


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
            assert await session.script_text() == RECORD_0
            log_text = (session.dir / EVENTS_FILE).read_text()
            assert "suggestion_failed" in log_text and "sk-test-secret-key-123456" not in log_text
            assert session.state.suggestions["s1"].status == "failed"
        finally:
            await session.close()


async def test_cancel_stops_a_run(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        slow = (await session.script_text()).replace("SLEEP_S = 0.01", "SLEEP_S = 0.5")
        (session.workspace.path / SCRIPT).write_text(slow)
        await session.commit_external_edit("slow")
        run = await session.start_run()
        watcher = asyncio.ensure_future(session.wait_run(run.run_id))
        await _until(lambda: session.state.runs[run.run_id].point_count > 0)
        await session.cancel_run(run.run_id)
        result = await asyncio.wait_for(watcher, timeout=HANG_GUARD_S)
        assert result.outcome.value == "cancelled"
    finally:
        await session.close()


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
        session.log.append(s.ModeChanged(mode="auto", previous="copilot", by="test"))
        with pytest.raises(EditApplyError, match="cut off by the token limit"):
            await session.request_suggestion()  # a policy never takes a cut-off answer
    finally:
        await session.close()


# -- the session owns concurrency and its runs --------------------------------------------------------------

async def _commit_script(session: Session, transform) -> None:
    text = transform(await session.script_text())
    (session.workspace.path / SCRIPT).write_text(text)
    await session.commit_external_edit("test edit")


async def test_cancelling_a_run_that_ignores_sigterm_never_blocks_the_loop(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        await _commit_script(session, lambda t: t.replace(
            "import sys, time", "import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)").replace(
            "SLEEP_S = 0.01", "SLEEP_S = 0.2").replace("STEPS = 30", "STEPS = 100000"))
        run = await session.start_run()
        await _until(lambda: session.state.runs[run.run_id].point_count > 0, "the first metric")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.ensure_future(ticker())
        await session.cancel_run(run.run_id)  # returns at once: SIGTERM sent, the escalation is the watcher's
        before = ticks
        result = await session.wait_run(run.run_id)
        beat.cancel()
        assert result.outcome.value == "cancelled"
        assert ticks > before + 5  # the loop kept turning during the 5 s grace before SIGKILL
    finally:
        await session.close()


async def test_a_run_keeps_being_watched_when_its_waiter_goes_away(tmp_path: Path) -> None:
    """Taking over from the agent stops the agent's waiting, never the session's watching."""
    session = new_session(tmp_path)
    try:
        run = await session.start_run(started_by="agent")
        waiter = asyncio.ensure_future(session.wait_run(run.run_id))
        await _until(lambda: session.state.runs[run.run_id].point_count > 0, "a metric")
        waiter.cancel()  # the agent stops
        await _until(lambda: not session.state.runs[run.run_id].is_live, "the run's end")
        view = session.state.runs[run.run_id]
        assert view.status == "reached_target" and view.point_count > 20
        assert event_types(session).count("run_finished") == 1
    finally:
        await session.close()


async def test_runs_get_an_allow_listed_environment_and_secrets_are_scrubbed(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-planted-secret-value-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("HF_TOKEN", "hf_planted_token_value_987654")
    monkeypatch.setenv("MICRO_KNOB", "kept")
    session = new_session(tmp_path)
    try:
        await _commit_script(session, lambda t: t.replace("def main() -> None:", (
            "import os\n"
            f"PLANTED = {key!r}\n"
            "def main() -> None:\n"
            "    print('env key:', os.environ.get('OPENAI_API_KEY'), os.environ.get('HF_TOKEN'),\n"
            "          os.environ.get('MICRO_KNOB'), flush=True)\n"
            "    print('stdout', PLANTED, flush=True)\n"
            "    print('stderr', PLANTED, file=sys.stderr, flush=True)\n"
            "    raise RuntimeError('crash carrying ' + PLANTED)\n"), 1))
        lines: list[str] = []
        session.subscribe_lines(lambda _run, line: lines.append(line))
        run = await session.start_run(override_guard=True)  # the probe script spawns and writes to /tmp on purpose
        result = await session.wait_run(run.run_id)
        assert result.outcome.value == "crashed"
        assert any(line == "env key: None None kept" for line in lines)  # no secret reached the process
        for text in ("\n".join(lines), (session.dir / EVENTS_FILE).read_text(),
                     (session.dir / "runs" / run.run_id / "result.json").read_text()):
            assert key not in text
        assert any("stdout ***" in line for line in lines) and any("crash carrying ***" in line for line in lines)
    finally:
        await session.close()


async def test_stop_at_target_ends_the_run_at_the_first_val_line_below_it(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    try:
        await _commit_script(session, lambda t: t.replace("STEPS = 30", "STEPS = 400"))
        run = await session.start_run(stop_at_target=True)
        result = await session.wait_run(run.run_id)
        assert result.outcome.value == "reached_target" and result.stopped_at_target
        assert (result.steps or 0) < 400
        events = read_events(session.dir / EVENTS_FILE).events
        reached = next(e for e in events if e.type == "target_reached")
        assert reached.body.val_loss <= 2.0 and reached.seq < next(e.seq for e in events if e.type == "run_finished")
    finally:
        await session.close()


async def test_what_a_run_leaves_running_in_the_background_is_ended_with_it(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    marker = tmp_path / "child.pid"
    try:
        await _commit_script(session, lambda t: t.replace("def main() -> None:", (
            "import subprocess\n"
            "def main() -> None:\n"
            f"    child = subprocess.Popen(['sleep', '300'])\n"
            f"    open({str(marker)!r}, 'w').write(str(child.pid))\n"), 1))
        run = await session.start_run(override_guard=True)  # it spawns a background child on purpose
        await session.wait_run(run.run_id)
        pid = int(marker.read_text())
        await _until(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
                     "the background child to end")
    finally:
        await session.close()


def test_commit_subjects_end_at_a_sentence_or_a_word() -> None:
    assert commit_message("Raise the LR. It converges faster.", "s1") == (
        "Raise the LR.", "Raise the LR. It converges faster.")
    long = "Use a warmup-stable-decay schedule fitted to the target with a longer stable phase and a short tail"
    subject, body = commit_message(long, "s2")
    assert len(subject) <= 72 and subject.endswith("…") and not subject[:-1].endswith(" ")
    assert long.startswith(subject[:-1]) and body == long
    assert commit_message("", "s3") == ("Apply suggestion s3", "")
    labelled, _ = commit_message("Offline oracle: the known change from record 0 to record 1 (RoPE).", "s4")
    assert labelled == "Offline oracle: the known change from record 0 to record 1 (RoPE)."  # a label is kept
    assert commit_message("Make the optimizer step cheaper: fuse the updates", "s5")[0] == (
        "Make the optimizer step cheaper")
