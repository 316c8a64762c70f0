"""The whole co-pilot loop through the app on real parts: session, git workspace, offline oracle, real runs.

The fixture track's scripts are tiny Python programs printing upstream-format lines (about a second per run).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from copilot.core.events import EVENTS_FILE, read_events
from copilot.core.providers import OpenAIProvider, OracleProvider
from copilot.core.session import Session
from copilot.ui.app import CopilotApp
from copilot.ui.screens.modals import ConfirmModal, QuitModal, TextPrompt
from copilot.ui.widgets.hunk_card import HunkCard
from copilot.ui.widgets.loss_chart import LossChart
from tests.support.fixture_track import FixtureTrack
from tests.support.runs import group_gone, wait_for
from tests.support.ui import notifications, screen_text, wait_until

SIZE = (120, 40)


def new_session(tmp_path: Path, provider=None) -> Session:  # type: ignore[no-untyped-def]
    track = FixtureTrack()
    return Session.create(tmp_path / "sessions", track, 0, provider or OracleProvider(track, 0))


def events_of(session: Session) -> list:  # type: ignore[type-arg]
    return read_events(session.dir / EVENTS_FILE).events


async def ask(pilot, instruction: str = "") -> None:  # type: ignore[no-untyped-def]
    await pilot.press("s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TextPrompt), 5, "the instruction prompt")
    if instruction:
        await pilot.press(*instruction)
    await pilot.press("enter")


async def test_full_loop_accept_reject_edit_commit_run_quit(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert "offline" in screen_text(app) and "fixture #0" in screen_text(app)
        await ask(pilot, "decay faster")
        await wait_until(pilot, lambda: len(app.screen.query(HunkCard)) == 3, 15, "three hunk cards")
        view = app.state.current_suggestion
        assert view is not None and view.instruction == "decay faster" and view.rationale
        await pilot.pause(0.3)  # the human reads before deciding
        for position, hunk in enumerate(view.hunks):
            assert app.selected_hunk == position
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
            await pilot.pause(0.05)
        await pilot.press("c")
        await wait_until(pilot, lambda: len(app.state.commits) == 2, 10, "the commit")
        commit = app.state.commits[-1]
        assert commit.provenance == "ai+human-edit" and commit.suggestion_id == view.id
        await wait_until(pilot, lambda: "DECAY = 0.95" in app.script_text, 5, "the script pane to reload")
        assert "LR = 0.003" in app.script_text and "STEPS = 30" in app.script_text
        assert session.workspace.commit_info(commit.sha).trailers["Provenance"] == "ai+human-edit"

        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.runs and not app.state.live_runs and
                         any(r.result for r in app.state.runs.values()), 30, "the run to finish")
        run = next(iter(app.state.runs.values()))
        assert run.commit == commit.sha and run.val_points
        await pilot.pause(0.3)
        chart = app.screen.query_one(LossChart)
        val = [s for s in chart.series if s.kind == "val"]
        assert val and len(val[0].xs) == len(run.val_points)
        assert any(s.kind == "target" for s in chart.series)
        assert app.logs.lines(run.run_id), "the output tail got the run's lines"
        await pilot.press("q")
        await pilot.pause(0.2)
    assert app.closed and not session.log.is_open

    events = events_of(session)
    types = [e.type for e in events]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    expected_order = ["session_started", "suggestion_requested", "suggestion_received", "hunk_decided",
                      "commit_created", "run_started", "metric", "run_finished", "session_ended"]
    positions = [types.index(t) for t in expected_order]
    assert positions == sorted(positions)
    decided = [e for e in events if e.type == "hunk_decided"]
    assert sorted(e.get("decision") for e in decided) == ["accept", "edit", "reject"]
    assert all(e.get("decision_time_s", 0) > 0.2 for e in decided), "decision time runs from when it was shown"
    assert next(e for e in decided if e.get("decision") == "reject").get("feedback") == "keep 30 steps"
    assert "feedback_given" in types
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
    types = [e.type for e in events_of(session)]
    assert "external_edit_detected" in types and "error" in types


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
        assert "failed" in screen_text(app)
        await pilot.press("q")
    assert "sk-test" not in (session.dir / EVENTS_FILE).read_text()


async def test_quit_with_live_run_can_stop_it(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    script = session.workspace.path / "train_gpt.py"
    script.write_text(script.read_text().replace("SLEEP_S = 0.01", "SLEEP_S = 1.0"))
    session.commit_external_edit("slow")
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.live_runs, 10, "a live run")
        run_id = app.state.live_runs[0].run_id
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitModal), 5, "the quit question")
        await pilot.press("s")
        await pilot.pause(0.2)
    info = json.loads((session.dir / "runs" / run_id / "run.json").read_text())
    pgid = info.get("pgid") or info.get("pid")
    assert wait_for(lambda: group_gone(pgid), 10), "stopping on quit kills the run's process group"
    ended = [e for e in events_of(session) if e.type == "session_ended"]
    assert ended and ended[-1].get("runs_left_running") == []
    assert app.quit_choice == "stop"
