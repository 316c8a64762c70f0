"""`speedcopilot start --mode auto`: the app shows the agent driving the same session; pause and take over."""

from __future__ import annotations

from pathlib import Path

from copilot.core.session.events import EVENTS_FILE, read_events
from copilot.core.llm.providers import OracleProvider
from copilot.core.session import Session, SessionOptions
from copilot.ui.app import CopilotApp
from copilot.ui.drivers import AgentDriver, CopilotDriver
from copilot.ui.screens.modals import QuitModal
from tests.support.fixture_track import RECORD_0, RECORD_1, FixtureTrack
from tests.support.ui import footer_line, notifications, wait_until


def auto_session(tmp_path: Path, nodes: int, hold_until: Path | None = None) -> Session:
    """`hold_until`: the baseline run waits for that file before it trains, so it is live until the test
    creates it (a condition, not a race against a run that lasts a fraction of a second)."""
    track = FixtureTrack()
    if hold_until is not None:
        wait = (f"    import pathlib\n    for _ in range(12000):  # gives up after about four minutes\n"
                f"        if pathlib.Path({str(hold_until)!r}).exists():\n            break\n"
                "        time.sleep(0.02)\n")
        held = RECORD_0.replace("def main() -> None:\n", "def main() -> None:\n" + wait)
        track._scripts = {**track._scripts, 0: held}
    return Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0),
                          options=SessionOptions(mode="auto", budget={"nodes": nodes}))


def types(session: Session) -> list[str]:
    return [e.type for e in read_events(session.dir / EVENTS_FILE).events]


async def test_agent_drives_the_session_shown_in_the_app(tmp_path: Path) -> None:
    session = auto_session(tmp_path, nodes=1)
    app = CopilotApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.driver, AgentDriver), what="the agent driver")
        agent = app.driver.agent
        await wait_until(pilot, lambda: not agent.running and "node_scored" in types(session), what="the agent's node")
        scored = [e for e in read_events(session.dir / EVENTS_FILE).events if e.type == "node_scored"]
        assert len(scored) >= 1
        await wait_until(pilot, lambda: any(c.provenance == "ai" for c in app.state.commits),
                         what="the agent's commit in the app's projection")
        assert len(app.state.runs) >= 2  # baseline + the node's run, shown in the runs table
        assert session.workspace.read("train_gpt.py", app.state.commits[-1].sha) == RECORD_1
        await pilot.press("q")
        await wait_until(pilot, lambda: app.closed, what="the app closed")
    assert "session_ended" in types(session)


async def test_take_over_keeps_the_agents_live_run_watched_to_its_end(tmp_path: Path) -> None:
    go = tmp_path / "go"
    session = auto_session(tmp_path, nodes=5, hold_until=go)
    app = CopilotApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.driver, AgentDriver) and app.driver.agent.running,
                         what="the agent to start")
        agent = app.driver.agent
        assert not app.check_action("suggest", ())  # the agent has the wheel
        await wait_until(pilot, lambda: "Take over" in footer_line(app), what="the agent's keys in the footer")
        assert "Suggest" not in footer_line(app)
        await wait_until(pilot, lambda: app.state.live_runs, what="a run the agent started")
        run_id = app.state.live_runs[0].run_id
        await pilot.press("T")
        await wait_until(pilot, lambda: app.state.mode == "copilot", what="co-pilot mode")
        await wait_until(pilot, lambda: not agent.running, what="the agent to stop")
        assert isinstance(app.driver, CopilotDriver)
        assert app.check_action("suggest", ()) is True
        await wait_until(pilot, lambda: "Suggest" in footer_line(app), what="the co-pilot keys in the footer")
        go.touch()
        # the run the agent left behind is still the session's: watched to its end, not orphaned
        await wait_until(pilot, lambda: app.state.runs[run_id].result is not None, what="the agent's run to end")
        finished = [e.body for e in read_events(session.dir / EVENTS_FILE).events
                    if e.type == "run_finished" and e.get("run_id") == run_id]
        assert len(finished) == 1 and finished[0].outcome == "reached_target"
        # it trained only after the take-over (held until then): every metric of it was logged after T
        assert app.state.runs[run_id].point_count > 0
        assert not app.state.live_runs
        await pilot.press("r")  # the human's first run: the only one live, not "2 runs live"
        await wait_until(pilot, lambda: any(r.run_id != run_id for r in app.state.runs.values()),
                         what="the human's run")
        await pilot.press("q")
        await wait_until(pilot, lambda: app.closed or isinstance(app.screen, QuitModal), what="quit or its question")
        if not app.closed:  # another live run asks what to do with it
            await pilot.press("s")
            await wait_until(pilot, lambda: app.closed, what="the app closed")
    assert "mode_changed" in types(session)


async def test_hand_back_gives_the_session_to_the_agent_again_and_no_run_is_lost(tmp_path: Path) -> None:
    """T, then a run of the human's own, then H: the agent drives again (logged as the human's switch) and goes on
    with its search, while the human's run and the agent's first one are both watched to their ends."""
    go = tmp_path / "go"
    session = auto_session(tmp_path, nodes=3, hold_until=go)
    app = CopilotApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.driver, AgentDriver) and app.driver.agent.running
                         and app.state.live_runs, what="the agent's first run")
        agents_run = app.state.live_runs[0].run_id
        assert not app.check_action("hand_back", ())  # nothing to hand back while the agent drives
        await pilot.press("T")
        await wait_until(pilot, lambda: isinstance(app.driver, CopilotDriver) and app.state.mode == "copilot",
                         what="co-pilot mode")
        assert app.check_action("hand_back", ()) is True
        await wait_until(pilot, lambda: "Hand back" in footer_line(app), what="the hand-back key in the footer")
        assert "? Help" in footer_line(app) and "q Quit" in footer_line(app)  # 80 columns keep them
        await pilot.press("r")  # the human's own run of the same (held) commit
        await wait_until(pilot, lambda: len(app.state.live_runs) == 2, what="the human's run live beside the agent's")
        humans_run = next(r.run_id for r in app.state.live_runs if r.run_id != agents_run)
        await pilot.press("H")
        await wait_until(pilot, lambda: isinstance(app.driver, AgentDriver) and app.state.mode == "auto",
                         what="the agent driving again")
        assert not app.check_action("suggest", ()) and not app.check_action("hand_back", ())
        switches = [e.body for e in read_events(session.dir / EVENTS_FILE).events if e.type == "mode_changed"]
        assert [(b.mode, b.by) for b in switches] == [("copilot", "human"), ("auto", "human")]
        handed_back_at = max(e.seq for e in read_events(session.dir / EVENTS_FILE).events if e.type == "mode_changed")
        go.touch()
        await wait_until(pilot, lambda: all(app.state.runs[r].result is not None for r in (agents_run, humans_run)),
                         what="both runs to end")
        await wait_until(pilot, lambda: any(e.type == "node_created" and e.seq > handed_back_at
                                            for e in read_events(session.dir / EVENTS_FILE).events),
                         what="the agent's search going on after the hand-back")
        finished = [e.body for e in read_events(session.dir / EVENTS_FILE).events if e.type == "run_finished"]
        for run_id in (agents_run, humans_run):
            ends = [b for b in finished if b.run_id == run_id]
            assert len(ends) == 1 and ends[0].outcome != "cancelled"
        await pilot.press("q")
        await wait_until(pilot, lambda: app.closed or isinstance(app.screen, QuitModal), what="quit or its question")
        if not app.closed:
            await pilot.press("s")
            await wait_until(pilot, lambda: app.closed, what="the app closed")



async def test_an_agent_that_spent_its_budget_can_be_taken_over_but_not_handed_back(tmp_path: Path) -> None:
    """The agent ends by itself once its nodes are used: T still gives the human the session (it was stuck with
    no working key), and H then says the budget is spent instead of starting an agent that stops at once."""
    session = auto_session(tmp_path, nodes=1)
    app = CopilotApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.driver, AgentDriver) and app.driver.agent.tree is not None
                         and not app.driver.agent.running and any("agent stopped" in n for n in notifications(app)),
                         what="the agent to end by itself")
        assert app.check_action("take_over", ()) is True and not app.check_action("agent_pause", ())
        await pilot.press("T")
        await wait_until(pilot, lambda: isinstance(app.driver, CopilotDriver) and app.state.mode == "copilot",
                         what="co-pilot mode")
        assert app.check_action("suggest", ()) is True
        await pilot.press("H")
        await wait_until(pilot, lambda: any("budget is spent" in n for n in notifications(app)),
                         what="the refusal")
        assert isinstance(app.driver, CopilotDriver) and app.state.mode == "copilot"
        assert [e.get("mode") for e in read_events(session.dir / EVENTS_FILE).events
                if e.type == "mode_changed"] == ["copilot"]
        await pilot.press("q")
        await wait_until(pilot, lambda: app.closed or isinstance(app.screen, QuitModal), what="quit or its question")
        if not app.closed:
            await pilot.press("s")
            await wait_until(pilot, lambda: app.closed, what="the app closed")
