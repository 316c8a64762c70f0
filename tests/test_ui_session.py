"""The whole co-pilot loop through the app on real parts: session, git workspace, offline oracle, real runs.

The fixture track's scripts are tiny Python programs printing upstream-format lines (about a second per run).
"""

from __future__ import annotations

import json
import threading
import socket
from pathlib import Path

import pytest

from copilot.core.session.events import EVENTS_FILE, read_events
from copilot.core.llm.providers import OpenAIProvider, OracleProvider
from copilot.core.session import Session
from copilot.ui.app import CopilotApp
from copilot.ui.screens.modals import ConfirmModal, QuitModal, TextPrompt
from copilot.ui.widgets.history_tree import run_label
from copilot.ui.widgets.hunk_card import HunkCard
from copilot.ui.widgets.loss_chart import LossChart
from tests.support.fixture_track import FixtureTrack
from tests.support.runs import group_gone, wait_for
from tests.support.ui import FakeClock, notifications, screen_text, wait_until

SIZE = (120, 40)


def new_session(tmp_path: Path, provider=None) -> Session:  # type: ignore[no-untyped-def]
    track = FixtureTrack()
    return Session.create(tmp_path / "sessions", track, 0, provider or OracleProvider(track, 0))


def events_of(session: Session) -> list:  # type: ignore[type-arg]
    return read_events(session.dir / EVENTS_FILE).events


async def hold_runs_after_step_2(session: Session, tmp_path: Path) -> Path:
    """Commit a script whose runs wait after step 2 while the returned file exists (unlink it to let them end)."""
    script = session.workspace.path / "train_gpt.py"
    hold = tmp_path / "hold"
    hold.touch()
    script.write_text(script.read_text().replace("import sys, time", f"import os, sys, time\nHOLD = {str(hold)!r}")
                      .replace("        time.sleep(SLEEP_S)\n",
                               "        while step >= 2 and os.path.exists(HOLD):\n            time.sleep(0.05)\n"
                               "        time.sleep(SLEEP_S)\n"))
    await session.commit_external_edit("held")
    return hold


async def ask(pilot, instruction: str = "") -> None:  # type: ignore[no-untyped-def]
    await pilot.press("s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TextPrompt), 5, "the instruction prompt")
    if instruction:
        await pilot.press(*instruction)
    await pilot.press("enter")


async def test_full_loop_accept_reject_edit_commit_run_quit(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    clock = FakeClock()
    app = CopilotApp(session, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "fixture #0" in screen_text(app), what="the header")
        assert "offline" in screen_text(app)
        await ask(pilot, "decay faster")
        await wait_until(pilot, lambda: len(app.screen.query(HunkCard)) == 3, 15, "three hunk cards")
        view = app.state.current_suggestion
        assert view is not None and view.instruction == "decay faster" and view.rationale
        for position, hunk in enumerate(view.hunks):
            await wait_until(pilot, lambda: app.ui.selected_hunk == position, what=f"hunk {position + 1} selected")
            clock.advance(1.5)  # the human reads each hunk before deciding
            if "LR" in hunk.search:
                await pilot.press("a")
            elif "STEPS" in hunk.search:
                await pilot.press("f")
                await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt), 5, "feedback prompt")
                await pilot.press(*"keep 30 steps", "enter")
            else:
                await pilot.press("e")
                await wait_until(pilot, lambda: app.screen.query("#edit-area"), 5, "the hunk editor")
                area = app.screen.query_one("#edit-area")
                area.load_text(hunk.replace.replace("0.94", "0.95"))
                await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: len(app.ui.staged) == position + 1, what="the decision staged")
        await pilot.press("c")
        await wait_until(pilot, lambda: len(app.state.commits) == 2, 10, "the commit")
        commit = app.state.commits[-1]
        assert commit.provenance == "ai+human-edit" and commit.suggestion_id == view.id
        await wait_until(pilot, lambda: "DECAY = 0.95" in app.ui.script_text, 5, "the script pane to reload")
        assert "LR = 0.003" in app.ui.script_text and "STEPS = 30" in app.ui.script_text
        assert session.workspace.commit_info(commit.sha).trailers["Provenance"] == "ai+human-edit"

        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.runs and not app.state.live_runs and
                         any(r.result for r in app.state.runs.values()), 30, "the run to finish")
        run = next(iter(app.state.runs.values()))
        assert run.commit == commit.sha and run.val_points
        chart = app.screen.query_one(LossChart)
        await wait_until(pilot, lambda: [len(x.xs) for x in chart.series if x.kind == "val"] == [len(run.val_points)],
                         what="the run's val points on the chart")
        assert any(s.kind == "target" for s in chart.series)
        assert any(s.kind == "reference" and s.ys == [4.0] for s in chart.series), "the record's own curve"
        assert app.ui.logs.lines(run.run_id), "the output tail got the run's lines"
        await pilot.press("q")
        await wait_until(pilot, lambda: app.closed, what="the app closed")
    assert not session.log.is_open

    events = events_of(session)
    types = [e.type for e in events]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    expected_order = ["session_started", "suggestion_requested", "suggestion_received", "commit_created",
                      "suggestion_decided", "run_started", "metric", "run_finished", "session_ended"]
    positions = [types.index(t) for t in expected_order]
    assert positions == sorted(positions)
    decided, = [e.body for e in events if e.type == "suggestion_decided"]
    assert decided.commit == commit.sha
    assert sorted(d.action for d in decided.decisions) == ["accept", "edit", "reject"]
    assert [d.decision_time_s for d in decided.decisions] == [1.5, 1.5, 1.5], "time from shown to decided"
    assert next(d for d in decided.decisions if d.action == "reject").feedback == "keep 30 steps"
    assert sum(1 for t in types if t == "metric") == len(run.points)


async def test_external_edit_then_stale_hunk_shows_apply_error_and_keeps_tree(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot)
        await wait_until(pilot, lambda: len(app.screen.query(HunkCard)) == 3, 15, "hunk cards")
        script = session.workspace.path / "train_gpt.py"
        script.write_text(script.read_text().replace("LR = 0.001", "LR = 0.002"))
        await pilot.press("W")  # the human edited in another window
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), 10, "the commit-your-edit modal")
        assert "+LR = 0.002" in screen_text(app)
        await pilot.press("y")
        await wait_until(pilot, lambda: app.state.commits[-1].provenance == "human", 10, "the human commit")
        head = session.workspace.head_sha()
        await pilot.press("A", "c")  # the LR hunk no longer applies
        await wait_until(pilot, lambda: any("does not apply" in n or "LR" in n for n in notifications(app)) or
                         any(n.title == "hunk does not apply" for n in app._notifications), 10, "apply error")
        assert session.workspace.head_sha() == head and not session.workspace.is_dirty()
        assert app.state.current_suggestion is not None  # still undecided: the human can try again
        await pilot.press("q")
    events = events_of(session)
    types = [e.type for e in events]
    assert "external_edit_detected" in types
    failed, = [e.body for e in events if e.type == "commit_failed"]
    assert "does not apply" in failed.error or "LR" in failed.error


async def test_unreachable_endpoint_says_to_use_the_oracle(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAIProvider(model="m", api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1",
                              timeout_s=2, deadline_s=5, max_retries=0)
    session = new_session(tmp_path, provider)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot)
        await wait_until(pilot, lambda: any("--provider oracle" in n for n in notifications(app)), 15,
                         "the provider error")
        assert app.state.suggestions and next(iter(app.state.suggestions.values())).status == "failed"
        await wait_until(pilot, lambda: "failed" in screen_text(app), what="the suggestion pane to say so")
        await pilot.press("q")
    assert "sk-test" not in (session.dir / EVENTS_FILE).read_text()


async def test_quit_with_live_run_can_stop_it(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    script = session.workspace.path / "train_gpt.py"
    script.write_text(script.read_text().replace("SLEEP_S = 0.01", "SLEEP_S = 1.0"))
    await session.commit_external_edit("slow")
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.live_runs, 10, "a live run")
        run_id = app.state.live_runs[0].run_id
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitModal), 5, "the quit question")
        await pilot.press("s")
        await wait_until(pilot, lambda: app.closed, what="the app closed")
    info = json.loads((session.dir / "runs" / run_id / "run.json").read_text())
    pgid = info.get("pgid") or info.get("pid")
    assert wait_for(lambda: group_gone(pgid)), "stopping on quit kills the run's process group"
    ended = [e for e in events_of(session) if e.type == "session_ended"]
    assert ended and ended[-1].get("runs_left_running") == []
    assert app.quit_choice == "stop"


async def end_a_run_unseen(pilot, session: Session, hold: Path) -> str:  # type: ignore[no-untyped-def]
    """Start a held run, stop the app's flush, let the run end and wait for its end in the log: the app's state
    still shows it live. Returns its id."""
    app = pilot.app
    await pilot.press("r")
    await wait_until(pilot, lambda: app.state.live_runs, 10, "a live run")
    run_id = app.state.live_runs[0].run_id
    assert app.flush_timer is not None
    app.flush_timer.pause()  # nothing is folded from here until the key press
    hold.unlink()
    await wait_until(pilot, lambda: any(e.type == "run_finished" for e in events_of(session)), 30,
                     "the run's end in the log")
    assert app.state.runs[run_id].is_live  # the screen's state has not seen it yet
    return run_id


async def test_quit_right_after_a_run_ended_does_not_ask_about_it(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    hold = await hold_runs_after_step_2(session, tmp_path)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await end_a_run_unseen(pilot, session, hold)
        await pilot.press("q")
        await wait_until(pilot, lambda: app.closed or isinstance(app.screen, QuitModal), 10, "the app to quit")
        assert app.closed and app.quit_choice is None


async def test_cancel_right_after_a_run_ended_says_no_run_is_training(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    hold = await hold_runs_after_step_2(session, tmp_path)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")  # the runs pane, where ctrl+c cancels
        await end_a_run_unseen(pilot, session, hold)
        before = len(notifications(app))
        await pilot.press("ctrl+c")

        def said() -> list[str]:
            return [m for m in notifications(app)[before:] if "no run is training" in m or "cancelling" in m]

        await wait_until(pilot, said, 10, "what ctrl+c says")
        assert said() == ["no run is training"], notifications(app)[before:]
        await pilot.press("q")


async def test_goto_undo_and_branch_from_history(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot)
        await wait_until(pilot, lambda: len(app.screen.query(HunkCard)) == 3, 15, "hunk cards")
        await wait_until(pilot, lambda: app.ui.script_text, 5, "the script")
        hunk = app.state.current_suggestion.hunks[0]
        await pilot.press("g")
        area = app.screen.query_one("#script-text")
        await wait_until(pilot, lambda: area.marked_text.strip() == hunk.search.strip(), what="the hunk's lines")
        await pilot.press("1", "A", "c")
        await wait_until(pilot, lambda: len(app.state.commits) == 2, 10, "the commit")
        start, applied = app.state.commits[0].sha, app.state.commits[1].sha
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), 5, "undo question")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.state.commits[-1].provenance == "revert", 10, "the revert commit")
        await wait_until(pilot, lambda: "LR = 0.001" in app.ui.script_text, 5, "the script after undo")
        # branch from the commit that had the suggestion applied: a new attempt off an earlier point
        await pilot.press("5")
        tree = app.screen.query_one("#history-tree")
        await wait_until(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data, 5, "history")
        node = next(n for n in _walk(tree.root) if n.data == applied)
        tree.move_cursor(node)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), 5, "branch question")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.state.head == applied and app.state.branch != "main", 10, "the branch")
        await wait_until(pilot, lambda: "LR = 0.003" in app.ui.script_text, 5, "the script on the branch")
        assert session.workspace.branch() == app.state.branch and start in {c.sha for c in app.state.commits}
        # the history names the branch the session is on at HEAD, not the one the commit was first made on
        head_row = next(n for n in _walk(tree.root) if n.data == applied)
        await wait_until(pilot, lambda: f"◀ HEAD ({app.state.branch})" in head_row.label.plain, what="HEAD's branch")
        # a finished run is a row of its own under its commit, with its whole result
        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.runs and all(r.result is not None for r in app.state.runs.values()),
                         what="the run's end")
        run = next(iter(app.state.runs.values()))
        await wait_until(pilot, lambda: any(child.label.plain == run_label(run).plain
                                            for child in _walk(tree.root) if child.data is None),
                         what="the run's row in the history")
        assert "final val" in run_label(run).plain
        await pilot.press("q")


def _walk(node):  # type: ignore[no-untyped-def]
    for child in node.children:
        yield child
        yield from _walk(child)


async def test_ctrl_c_in_runs_pane_cancels_and_resume_reattaches(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    hold = await hold_runs_after_step_2(session, tmp_path)  # still live when the app quits
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.live_runs and app.state.live_runs[0].points, 15, "a training run")
        first = app.state.live_runs[0].run_id
        await pilot.press("3")  # focus the runs table, then ctrl+c
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: app.state.runs[first].status == "cancelled", 15, "the cancellation")
        await pilot.press("r")
        await wait_until(pilot, lambda: len(app.state.live_runs) == 1, 10, "a second run")
        second = app.state.live_runs[0].run_id
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitModal), 5, "the quit question")
        await pilot.press("l")  # leave it running
        await wait_until(pilot, lambda: app.closed, what="the app closed")
    assert app.quit_choice == "leave"
    ended = [e for e in events_of(session) if e.type == "session_ended"][-1]
    assert ended.get("runs_left_running") == [second]
    assert all(point.step <= 2 for point in app.state.runs[second].points)  # held, not finished
    hold.unlink()  # the run left training goes on to its end

    track = FixtureTrack()
    resumed = Session.open(tmp_path / "sessions", session.id, track, OracleProvider(track, 0))
    app2 = CopilotApp(resumed)
    async with app2.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app2.state.runs[second].result is not None, 30, "the re-attached run")
        assert app2.state.runs[second].status != "running"
        assert second in resumed._watchers
        await pilot.press("q")
    types = [e.type for e in events_of(resumed)]
    assert "session_resumed" in types and "run_attached" in types and types[-1] == "session_ended"


@pytest.mark.slow
async def test_micro_track_oracle_accept_all_and_a_tiny_real_training_run(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.core.tracks.micro import MicroTrack
    from copilot.core.tracks.microdata import prepare_micro_data

    prepare_micro_data(tmp_path / "data", size="small")
    monkeypatch.setenv("MICRO_MAX_STEPS", "5")
    monkeypatch.setenv("MICRO_VAL_EVERY", "5")
    monkeypatch.setenv("MICRO_VAL_WINDOWS", "4")
    track = MicroTrack(data_dir=tmp_path / "data")
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    app = CopilotApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await ask(pilot)
        await wait_until(pilot, lambda: app.screen.query(HunkCard), 30, "the oracle's hunks")
        await pilot.press("A", "c")
        await wait_until(pilot, lambda: len(app.state.commits) == 2, 15, "the commit")
        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.runs and next(iter(app.state.runs.values())).result, 240,
                         "the tiny micro run")
        run = next(iter(app.state.runs.values()))
        assert run.status != "crashed", run.result
        assert run.val_points and run.train_points
        chart = app.screen.query_one(LossChart)
        await wait_until(pilot, lambda: any(x.label.endswith(" val") for x in chart.series), what="the val curve")
        await pilot.press("q")
    assert [e.type for e in events_of(session)][-1] == "session_ended"


async def test_run_on_a_dirty_working_copy_offers_to_commit_the_edit(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        script = session.workspace.path / "train_gpt.py"
        script.write_text(script.read_text().replace('NOTE = "fixture"', 'NOTE = "mine"'))
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), 10, "the commit-your-edit offer")
        assert any("uncommitted changes" in n for n in notifications(app))
        assert not app.state.runs
        await pilot.press("y")
        await wait_until(pilot, lambda: app.state.commits[-1].provenance == "human", 10, "the human commit")
        await pilot.press("q")


async def test_quit_while_the_model_is_thinking_logs_the_cancelled_request(tmp_path: Path) -> None:
    server = socket.socket()  # accepts connections and never answers: a hung endpoint
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    provider = OpenAIProvider(model="m", api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1",
                              timeout_s=30, deadline_s=60, max_retries=0)
    session = new_session(tmp_path, provider)
    app = CopilotApp(session)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot)
            await wait_until(pilot, lambda: app.state.suggestions, 5, "the request")
            await wait_until(pilot, lambda: "waiting for the model" in screen_text(app), what="the waiting notice")
            await pilot.press("q")
            await wait_until(pilot, lambda: app.closed, 10, "the app to close")
    finally:
        server.close()
    types = [e.type for e in events_of(session)]
    assert types[-2:] == ["suggestion_failed", "session_ended"]


async def test_session_factory_draws_first_then_opens(tmp_path: Path) -> None:
    built: list[Session] = []
    release = threading.Event()

    def factory() -> Session:
        release.wait(10)  # git init and friends take a moment
        built.append(new_session(tmp_path))
        return built[0]

    app = CopilotApp(factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "opening the session" in screen_text(app), 5, "the first frame")
        assert app.session is None
        await pilot.press("r")  # too early: said so, nothing breaks
        await wait_until(pilot, lambda: any("still opening" in n for n in notifications(app)), what="the notice")
        release.set()
        await wait_until(pilot, lambda: app.session is not None and "fixture #0" in screen_text(app), 10,
                         "the session")
        await wait_until(pilot, lambda: "LR = 0.001" in app.ui.script_text, 5, "the script")
        # every pane of the recomposed screen gets the state, not only those mounted when the first flush came
        from copilot.ui.screens.main import PANES

        assert len(app.main().receivers()) == 1 + len(PANES)
        await ask(pilot)
        await wait_until(pilot, lambda: "hunk 1/" in screen_text(app), what="the suggestion's first hunk card")
        await pilot.press("q")
    assert built and not built[0].log.is_open


async def test_session_factory_error_is_raised_after_the_app_exits(tmp_path: Path) -> None:
    from copilot.core.errors import SessionLockedError

    def factory() -> Session:
        raise SessionLockedError("session x is already open (pid 1)")

    app = CopilotApp(factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.startup_error is not None, 5, "the failure")
    assert isinstance(app.startup_error, SessionLockedError)


async def test_an_edit_made_in_another_editor_is_noticed_and_committed_as_human(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.driver.name == "copilot" and app.driver._stop_watch is not None,
                         what="the watcher running")
        script = session.workspace.path / "train_gpt.py"
        script.write_text(script.read_text().replace("LR = 0.001", "LR = 0.002  # tried in vim"))
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), 15, "the watcher's commit offer")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.state.commits[-1].provenance == "human", 10, "a human commit")
        assert "tried in vim" in await session.script_text() and not session.workspace.is_dirty()
        assert "external_edit_detected" in [e.type for e in events_of(session)]
        await pilot.press("q")


async def test_the_screen_broadcasts_to_every_pane_mounted_now(tmp_path: Path) -> None:
    """The list of panes a flush reaches is kept between flushes, but never a partial one: a flush in the
    middle of a recompose (old panes going, new ones coming) must not leave a pane without its state."""
    from copilot.ui.panes.chart import ChartPane

    app = CopilotApp(new_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "fixture #0" in screen_text(app), what="the panes")
        screen = app.main()
        assert len(screen.receivers()) == 6
        old = screen.query_one("#chart")
        parent = old.parent
        await old.remove()
        assert old not in screen.receivers() and len(screen.receivers()) == 5
        new = ChartPane(id="chart", classes="pane boxed")
        await parent.mount(new)
        assert new in screen.receivers() and len(screen.receivers()) == 6
        await pilot.press("q")


async def test_a_watched_runs_tail_comes_from_its_watcher_and_a_finished_runs_from_its_file(tmp_path: Path) -> None:
    """The log tail is seeded from a run's output.log only when no watcher follows it: a watcher reads the file
    from the start and hands out every line, so seeding a watched run as well showed its first lines twice."""
    session = new_session(tmp_path)
    hold = await hold_runs_after_step_2(session, tmp_path)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.live_runs and app.state.live_runs[0].point_count >= 2,
                         what="the run held after step 2")
        run_id = app.state.live_runs[0].run_id
        assert (session.dir / "runs" / run_id / "output.log").read_text().strip()  # the file has lines
        assert session.is_watching(run_id) and app._log_tail_of(run_id) == []
        hold.unlink()
        await wait_until(pilot, lambda: app.state.runs[run_id].result is not None and not session.is_watching(run_id),
                         what="the run's end")
        from_file = app._log_tail_of(run_id)
        assert from_file and from_file == app.ui.logs.lines(run_id)[-len(from_file):]
        await pilot.press("q")
