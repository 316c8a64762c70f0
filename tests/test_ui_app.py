"""The app rendering a SessionState built from hand-written events (no live session): layout, keys, streams."""

from __future__ import annotations

from textual.widgets import Log, TabbedContent, TextArea

from copilot.core.session.events import Event
from copilot.core.session.projection import SessionState
from copilot.ui.app import CopilotApp
from copilot.ui.screens.help import HelpScreen
from copilot.ui.screens.main import MainScreen
from copilot.ui.screens.modals import MessageModal
from copilot.ui.widgets.hunk_card import HunkCard
from copilot.ui.widgets.loss_chart import LossChart
from copilot.ui.widgets.run_table import RunTable
from tests.support.ui import metric_points, sample_events, sample_state, screen_text, wait_until


def app_for(**kwargs) -> CopilotApp:
    return CopilotApp(state=sample_state(**kwargs))


async def test_small_terminal_uses_tabs_and_header_says_what_is_going_on() -> None:
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "hunk 1/3" in screen_text(app), 5, "the hunk cards")
        screen = app.screen
        assert isinstance(screen, MainScreen) and not screen.wide
        tabs = screen.query_one("#tabs", TabbedContent)
        assert tabs.active == "pane-suggestion"
        text = screen_text(app)
        assert "micro #5" in text and "offline oracle" in text
        assert "hunk 1/3" in text and "Three small changes." in text
        await pilot.press("2")
        await pilot.pause(0.1)
        assert tabs.active == "pane-script"


async def test_large_terminal_splits_and_resize_flips_layout_without_losing_state() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        assert app.screen.wide and app.screen.query("#top-row") and app.screen.query("#bottom-row")
        text = screen_text(app)
        assert "suggestion g2" in text and "r2" in text and "main@bbbbbbb" in text
        await pilot.press("a")  # stage a decision, then change layout: the staged decision must survive
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: not app.screen.wide and app.screen.query(".hunk-0"), 5, "narrow layout") and app.screen.query("#tabs")
        assert ("g2", 0) in app.staged
        card = app.screen.query_one(".hunk-0", HunkCard)
        assert card.decision == "accept" and "staged" in str(card.border_subtitle)


async def test_metric_events_reach_the_chart_and_projection() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        chart = app.screen.query_one(LossChart)
        before = {s.label: len(s.xs) for s in chart.series}
        assert before.get("r2 val") == 2
        seq = app.state.last_seq
        for fields in metric_points("r2", steps=20)[12:]:  # steps 11..20 of the live run
            seq += 1
            app.ingest(Event(seq=seq, t=1.0 + seq, type="metric", data=fields))
        await pilot.pause(0.3)
        after = {s.label: len(s.xs) for s in chart.series}
        assert after["r2 val"] == 4 and after["r2 train"] > before["r2 train"]
        assert "record" not in after  # no session, no reference curve
        assert any(s.kind == "target" for s in chart.series)
        assert "r2" in chart.projection_ms and chart.projection_ms["r2"] > 2000.0
        table = app.screen.query_one(RunTable)
        assert table.get_row("r2")[3] == "20/20"


async def test_decisions_are_staged_with_feedback_and_edits_and_timed() -> None:
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.focused, HunkCard), 5, "the first hunk focused")
        assert isinstance(app.focused, HunkCard) and app.focused.hunk.index == 0
        await pilot.pause(0.1)
        await pilot.press("a")  # hunk 0 accepted, selection moves on
        await pilot.press("f")  # hunk 1: reject with feedback
        await pilot.pause(0.1)
        await pilot.press(*"too risky")
        await pilot.press("enter")
        await pilot.pause(0.1)
        await pilot.press("e")  # hunk 2: edit the replacement
        await pilot.pause(0.2)
        area = app.screen.query_one("#edit-area", TextArea)
        assert area.text == "x2 = 12\n"  # pre-filled with the proposal
        area.load_text("")
        await pilot.press(*"x2 = 99")
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        staged = {k[1]: v for k, v in app.staged.items() if k[0] == "g2"}
        assert staged[0].action == "accept" and staged[0].decision_time_s >= 0.1
        assert staged[1].action == "reject" and staged[1].feedback == "too risky"
        assert staged[2].action == "edit" and staged[2].edited_replace == "x2 = 99"
        assert "feedback: too risky" in screen_text(app)
        await pilot.press("c")  # no session: read-only viewer refuses politely
        await pilot.pause(0.1)
        assert any("read-only" in n.message for n in app._notifications)


async def test_hunk_keys_are_hidden_when_nothing_waits_for_a_decision() -> None:
    app = app_for(with_suggestion=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        assert app.check_action("accept", ()) is False
        assert "Accept" not in screen_text(app).splitlines()[-1]
        assert app.check_action("run", ()) is True


async def test_help_screen_lists_the_keys() -> None:
    app = app_for()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Accept the selected hunk" in text and "ctrl+c" in text
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MainScreen)


async def test_theme_switch_by_key_and_palette_is_saved() -> None:
    saved: list[str] = []
    app = CopilotApp(state=sample_state(), on_theme_saved=saved.append)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        assert app.theme == "speedcopilot-dark"
        await pilot.press("t")
        await pilot.pause(0.1)
        assert app.theme != "speedcopilot-dark" and saved[-1] == app.theme
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"next colour theme")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert len(saved) == 2 and saved[-1] == app.theme


async def test_unknown_theme_falls_back_with_a_warning() -> None:
    app = CopilotApp(state=sample_state(), theme="no-such-theme")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        assert app.theme == "speedcopilot-dark"


async def test_log_burst_is_bounded_and_flushed_in_batches() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        assert app.selected_run_id() == "r2"
        flushes = app.flushes
        for i in range(100_000):
            app.logs.append("r2", f"step:{i} progress\r step:{i} done")
        await pilot.pause(0.35)
        log = app.screen.query_one("#log-tail", Log)
        assert log.line_count <= 2000
        assert log.lines[-1] == " step:99999 done"
        assert app.flushes - flushes <= 10  # the timer, not one refresh per line


async def test_replay_driver_feeds_the_same_projection() -> None:
    events = sample_events(live_run=True)
    app = CopilotApp()
    async with app.run_test(size=(160, 48)) as pilot:
        for event in events:
            app.ingest(event)
        await pilot.pause(0.3)
        assert app.state.last_seq == events[-1].seq
        assert set(app.state.runs) == {"r1", "r2"}
        assert "offline oracle" in screen_text(app)


async def test_rationale_streams_in_before_the_suggestion_lands() -> None:
    events = sample_events(with_suggestion=False)
    app = CopilotApp(state=SessionState.from_events(events))
    async with app.run_test(size=(100, 30)) as pilot:
        app.ingest(Event(seq=events[-1].seq + 1, t=2e9, type="suggestion_requested", data={"suggestion_id": "g9"}))
        app._on_delta("Raise the learning ")
        await pilot.pause(0.2)
        app._on_delta("rate a little.")
        await wait_until(pilot, lambda: "Raise the learning rate a little." in screen_text(app), 3, "streamed text")
        assert "suggestion g9 · requested" in screen_text(app)


async def test_crashed_run_shows_its_last_error_lines() -> None:
    events = sample_events(live_run=True)
    app = CopilotApp(state=SessionState.from_events(events))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        app.ingest(Event(seq=events[-1].seq + 1, t=2e9, type="run_finished",
                         data={"run_id": "r2", "outcome": "crashed", "exit_code": 1,
                               "error_tail": "Traceback ...\nRuntimeError: CUDA out of memory"}))
        await wait_until(pilot, lambda: isinstance(app.screen, MessageModal) and "crashed" in screen_text(app), 3,
                         "the crash dialog")
        text = screen_text(app)
        assert "run r2 crashed" in text and "CUDA out of memory" in text and "exit code 1" in text
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.state.runs["r2"].status == "crashed" and not app.state.live_runs


async def test_decision_time_is_time_spent_on_each_hunk() -> None:
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.focused, HunkCard), 5, "the first hunk focused")
        await pilot.pause(0.8)
        await pilot.press("a")
        await pilot.pause(0.4)
        await pilot.press("x")
        await pilot.press("a")  # no time spent on the third
        times = [app.staged[("g2", i)].decision_time_s for i in range(3)]
        assert times[0] >= 0.8
        assert 0.4 <= times[1] < times[0]
        assert times[2] < times[1]


async def test_pinned_runs_stay_on_the_chart() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        chart = app.screen.query_one(LossChart)
        await wait_until(pilot, lambda: app.screen.query_one(RunTable).row_count == 2 and chart.series, 5, "runs")
        assert {s.label for s in chart.series if s.kind == "val"} == {"r2 val"}
        await pilot.press("3")
        await pilot.pause(0.1)
        await pilot.press("up")  # select the finished run r1 (r2 is live, so shown anyway)
        await pilot.press("p")
        await pilot.press("down")
        await pilot.pause(0.3)
        assert app.pinned_runs == ["r1"]
        assert {s.label for s in chart.series if s.kind == "val"} == {"r1 val", "r2 val"}
