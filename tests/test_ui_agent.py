"""`speedcopilot start --mode auto`: the app shows the agent driving the same session; pause and take over."""

from __future__ import annotations

from pathlib import Path

from copilot.core.session.events import EVENTS_FILE, read_events
from copilot.core.llm.providers import OracleProvider
from copilot.core.session import Session, SessionOptions
from copilot.ui.app import CopilotApp
from tests.support.fixture_track import RECORD_1, FixtureTrack
from tests.support.ui import wait_until


def auto_session(tmp_path: Path, nodes: int) -> Session:
    track = FixtureTrack()
    return Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0),
                          options=SessionOptions(mode="auto", budget={"nodes": nodes}))


def types(session: Session) -> list[str]:
    return [e.type for e in read_events(session.dir / EVENTS_FILE).events]


async def test_agent_drives_the_session_shown_in_the_app(tmp_path: Path) -> None:
    session = auto_session(tmp_path, nodes=1)
    app = CopilotApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.agent is not None and not app.agent.running
                         and any(e == "node_scored" for e in types(session)[-8:] if e), 60, "the agent's node")
        scored = [e for e in read_events(session.dir / EVENTS_FILE).events if e.type == "node_scored"]
        assert len(scored) >= 1
        assert any(c.provenance == "ai" for c in app.state.commits)  # the app's projection saw the agent's commit
        assert len(app.state.runs) >= 2  # baseline + the node's run, shown in the runs table
        assert session.workspace.read("train_gpt.py", app.state.commits[-1].sha) == RECORD_1
        await pilot.press("q")
    assert "session_ended" in types(session)


async def test_take_over_switches_to_copilot_mode(tmp_path: Path) -> None:
    session = auto_session(tmp_path, nodes=5)
    app = CopilotApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.agent is not None and app.agent.running, 20, "the agent to start")
        assert not app.check_action("suggest", ())  # the agent has the wheel
        await pilot.press("T")
        await wait_until(pilot, lambda: app.state.mode == "copilot", 20, "co-pilot mode")
        await wait_until(pilot, lambda: not app.agent.running, 20, "the agent to stop")
        assert app.check_action("suggest", ()) is not False
        await pilot.press("q")
        await pilot.pause(0.3)
        if app.is_running:  # a run left live asks what to do with it
            await pilot.press("s")
    assert "mode_changed" in types(session)
