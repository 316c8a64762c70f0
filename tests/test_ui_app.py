"""The app rendering a SessionState built from typed events (no live session): layout, keys, streams, chart."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

from textual.widgets import Log, TabbedContent, TextArea

from copilot.core.errors import ProviderError, SpeedcopilotError
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session import schema as s
from copilot.core.session.events import Event
from copilot.ui.app import CopilotApp
from copilot.ui.screens.help import HelpScreen
from copilot.ui.screens.main import MainScreen
from copilot.ui.screens.modals import MessageModal, TextPrompt
from copilot.ui.widgets.hunk_card import HunkCard
from copilot.ui.widgets.loss_chart import LossChart, y_range
from copilot.ui.widgets.run_table import RunTable
from tests.support.ui import (
    FakeClock,
    ask_for_suggestion,
    footer_line,
    live_session,
    metric_points,
    sample_events,
    sample_state,
    screen_text,
    wait_until,
)


def app_for(clock: FakeClock | None = None, **kwargs) -> CopilotApp:
    return CopilotApp(state=sample_state(**kwargs), clock=clock or FakeClock())


def next_event(app: CopilotApp, body: s.EventBody) -> Event:
    seq = max(app.state.last_seq, max((e.seq for e in app._inbox), default=0)) + 1
    event = Event.of(seq, 2e9 + seq, body)
    app.ingest(event)
    return event


async def test_small_terminal_uses_tabs_and_header_and_footer_say_what_is_going_on() -> None:
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "hunk 1/3" in screen_text(app), what="the hunk cards")
        screen = app.screen
        assert isinstance(screen, MainScreen) and not screen.wide
        tabs = screen.query_one("#tabs", TabbedContent)
        assert tabs.active == "pane-suggestion"
        text = screen_text(app)
        assert "micro #5" in text and "offline oracle" in text
        assert "hunk 1/3" in text and "Three small changes." in text
        # at 80 columns the way out is still on screen
        await wait_until(pilot, lambda: "? Help" in footer_line(app) and "q Quit" in footer_line(app),
                         what="help and quit in the footer")
        await pilot.press("2")
        await wait_until(pilot, lambda: tabs.active == "pane-script", what="the script tab")


async def test_large_terminal_splits_and_resize_flips_layout_without_losing_state() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        # the panes draw in turns, one large pane a flush: wait for the runs pane too
        await wait_until(pilot, lambda: "suggestion g2" in screen_text(app) and "r2" in screen_text(app),
                         what="the suggestion and the runs drawn")
        assert app.screen.wide and app.screen.query("#top-row") and app.screen.query("#bottom-row")
        assert "main@bbbbbbb" in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: not app.screen.wide and app.screen.query(".hunk-0"), what="narrow layout")
        assert app.screen.query("#tabs")
        await pilot.resize_terminal(160, 48)
        await wait_until(pilot, lambda: app.screen.wide and app.screen.query(".hunk-2"), what="wide again")


async def test_a_pane_is_visible_when_its_tab_is_shown_or_the_layout_splits() -> None:
    app = app_for()
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.screen.wide and app.screen.query("#history"), what="the split layout")
        shown = {name: app.screen.pane_visible(name) for name in ("suggestion", "script", "history", "runs", "chart")}
        assert shown == {"suggestion": True, "script": True, "history": False, "runs": True, "chart": True}
        await pilot.resize_terminal(80, 24)
        # the split layout has tabs too (#left-tabs): wait for the narrow layout's own, its first tab shown
        await wait_until(pilot, lambda: not app.screen.wide and app.screen.query("#tabs")
                         and app.screen.query_one("#tabs", TabbedContent).active == "pane-suggestion",
                         what="the narrow layout's tabs")
        assert app.screen.pane_visible("suggestion")
        app.screen.query_one("#tabs", TabbedContent).active = "pane-runs"
        await wait_until(pilot, lambda: app.screen.pane_visible("runs"), what="the runs tab shown")
        assert not app.screen.pane_visible("suggestion") and not app.screen.pane_visible("chart")


async def test_staged_decisions_survive_a_layout_flip(tmp_path: Path) -> None:
    session = live_session(tmp_path)
    app = CopilotApp(session, clock=FakeClock())
    async with app.run_test(size=(160, 48)) as pilot:
        await ask_for_suggestion(pilot)
        await pilot.press("a")
        await wait_until(pilot, lambda: len(app.ui.staged) == 1, what="the decision staged")
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: not app.screen.wide and app.screen.query(".hunk-0"), what="narrow layout")
        (key, decision), = app.ui.staged.items()
        assert decision.action == "accept" and key[1] == 0
        card = app.screen.query_one(".hunk-0", HunkCard)
        assert card.decision is not None and card.decision.action == "accept"
        # the card may be in the DOM before its on_mount labels it: wait for the label, do not race it
        await wait_until(pilot, lambda: "staged" in str(card.border_subtitle), what="the card's label")
        await app.close_and_exit(False)


async def test_metric_events_reach_the_chart_and_its_projection() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        chart = app.screen.query_one(LossChart)
        await wait_until(pilot, lambda: any(x.label == "r2 val" for x in chart.series), what="the live run drawn")
        before = {x.label: len(x.xs) for x in chart.series}
        assert before["r2 val"] == 2
        assert "r2" not in chart.projection_ms  # two val points are not a trend
        for body in metric_points("r2", steps=20)[12:]:  # steps 11..20 of the live run
            next_event(app, body)
        await wait_until(pilot, lambda: {x.label: len(x.xs) for x in chart.series}.get("r2 val") == 4,
                         what="the new val points")
        after = {x.label: len(x.xs) for x in chart.series}
        assert after["r2 train"] > before["r2 train"]
        assert "record" not in after  # no session, no reference curve
        assert any(x.kind == "target" for x in chart.series)
        assert chart.projection_ms["r2"] > 2000.0
        table = app.screen.query_one(RunTable)
        await wait_until(pilot, lambda: table.get_row("r2")[3] == "20/20", what="the step count")


async def test_new_points_on_the_same_curves_redraw_the_chart_but_not_its_legend() -> None:
    """The legend is a Static: rewriting it re-lays-out the whole screen. New points under the same labels and
    colours leave it as drawn; a new curve (the projection, once there is a trend) rewrites it."""
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        chart = app.screen.query_one(LossChart)
        await wait_until(pilot, lambda: chart._plot() is not None and any(x.label == "r2 val" for x in chart.series)
                         and chart._drawn, what="the live run drawn")
        legend = chart._plot().query_one("#legend")
        rewrites: list[str] = []
        update = legend.update
        legend.update = lambda content="", **kw: (rewrites.append(str(content)), update(content, **kw))[1]
        def train_points() -> int:
            return len(next(x for x in chart.series if x.label == "r2 train").xs)

        before = train_points()
        for body in metric_points("r2", steps=20)[12:16]:  # train steps 11-14 only: the same curves, longer
            next_event(app, body)
        await wait_until(pilot, lambda: train_points() == before + 4 and chart._drawn, what="the new points drawn")
        assert rewrites == []
        for body in metric_points("r2", steps=20)[16:]:  # val points 15 and 20: a trend, so a projection curve
            next_event(app, body)
        await wait_until(pilot, lambda: any(x.kind == "projection" for x in chart.series), what="the projection")
        await wait_until(pilot, lambda: any("projected" in r for r in rewrites), what="the legend rewritten")


async def test_reference_curve_is_drawn_and_the_target_stays_inside_the_y_range() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        chart = app.screen.query_one(LossChart)
        app.ui.reference = [MetricPoint(step=i, val_loss=7.0 - i * 0.3, train_time_ms=i * 150.0) for i in range(1, 13)]
        app.mark_dirty("chart")
        await wait_until(pilot, lambda: any(x.kind == "reference" for x in chart.series), what="the record's curve")
        low, high = y_range(chart.series, 3.28)
        assert low <= 3.28 <= high
        ref = next(x for x in chart.series if x.kind == "reference")
        assert ref.label == "record" and len(ref.xs) == 12


async def test_decisions_are_staged_with_feedback_and_edits_and_timed_on_the_apps_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    app = CopilotApp(live_session(tmp_path), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        hunks = await ask_for_suggestion(pilot)
        assert len(hunks) == 3 and isinstance(app.focused, HunkCard) and app.focused.hunk.index == 0
        clock.advance(4.0)
        await pilot.press("a")  # hunk 0 accepted, selection moves on
        await wait_until(pilot, lambda: app.ui.selected_hunk == 1, what="the second hunk selected")
        clock.advance(2.5)
        await pilot.press("f")  # hunk 1: reject with feedback
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt), what="the feedback prompt")
        await pilot.press(*"too risky")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.ui.staged) == 2, what="the feedback staged")
        await pilot.press("e")  # hunk 2: edit the replacement
        await wait_until(pilot, lambda: app.screen.query("#edit-area"), what="the edit dialog")
        area = app.screen.query_one("#edit-area", TextArea)
        assert area.text == hunks[2].replace  # pre-filled with the proposal
        area.load_text("")
        await pilot.press(*"EDITED = 1")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(app.ui.staged) == 3, what="the edit staged")
        staged = {k[1]: v for k, v in app.ui.staged.items()}
        assert (staged[0].action, staged[0].decision_time_s) == ("accept", 4.0)
        assert (staged[1].action, staged[1].feedback, staged[1].decision_time_s) == ("reject", "too risky", 2.5)
        assert staged[2].action == "edit" and staged[2].edited_replace == "EDITED = 1"
        assert staged[2].decision_time_s == 0.0  # the clock did not move while the third was on screen
        await wait_until(pilot, lambda: "feedback: too risky" in screen_text(app), what="the feedback shown")
        await app.close_and_exit(False)


async def test_a_viewer_without_a_session_refuses_decisions_politely() -> None:
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: "hunk 1/3" in screen_text(app), what="the hunk cards")
        assert app.check_action("accept", ()) is False and app.check_action("run", ()) is False
        assert app.check_action("toggle_diff", ()) is True
        await wait_until(pilot, lambda: "Help" in footer_line(app), what="the footer")
        assert "Accept" not in footer_line(app) and "c or enter: apply" not in screen_text(app)
        app.need_session()
        await wait_until(pilot, lambda: any("read-only" in n.message for n in app._notifications),
                         what="the read-only notice")


async def test_hunk_keys_are_hidden_when_nothing_waits_for_a_decision(tmp_path: Path) -> None:
    app = CopilotApp(live_session(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "Help" in footer_line(app) and "Suggest" in footer_line(app),
                         what="the footer")
        assert app.check_action("accept", ()) is False
        assert "Accept" not in footer_line(app)
        assert app.check_action("run", ()) is True
        await app.close_and_exit(False)


async def test_help_screen_lists_the_keys() -> None:
    app = app_for()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
        await wait_until(pilot, lambda: "Accept the selected hunk" in screen_text(app), what="the key list")
        assert "ctrl+c" in screen_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="back to the main screen")


async def test_theme_switch_by_key_and_palette_is_saved() -> None:
    saved: list[str] = []
    app = CopilotApp(state=sample_state(), on_theme_saved=saved.append)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.theme == "speedcopilot-dark"
        await pilot.press("t")
        await wait_until(pilot, lambda: len(saved) == 1, what="the first theme saved")
        assert app.theme != "speedcopilot-dark" and saved[-1] == app.theme
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: len(app.screen_stack) > 1, what="the command palette")
        await pilot.press(*"next colour theme")
        await wait_until(pilot, lambda: "Switch to the next colour theme" in screen_text(app), what="the match")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(saved) == 2, what="the second theme saved")
        assert saved[-1] == app.theme


async def test_unknown_theme_falls_back_with_a_warning() -> None:
    app = CopilotApp(state=sample_state(), theme="no-such-theme")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: any("unknown theme" in n.message for n in app._notifications),
                         what="the warning")
        assert app.theme == "speedcopilot-dark"


async def test_log_burst_is_bounded_and_drawn_by_the_flush_not_per_line() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.ui.selected_run == "r2", what="the live run selected")
        flushes = app.flushes
        lines = 100_000
        for i in range(lines):
            app.ingest_line("r2", f"step:{i} progress\r step:{i} done")
        assert app.flushes == flushes  # taking a line draws nothing by itself
        log = app.screen.query_one("#log-tail", Log)
        await wait_until(pilot, lambda: log.lines and log.lines[-1] == " step:99999 done", what="the last line")
        assert log.line_count <= 2000
        assert list(log.lines) == [f" step:{i} done" for i in range(98_000, 100_000)]  # the kept tail, whole
        assert app.flushes - flushes < lines / 100  # batched: far fewer redraws than lines


async def test_a_sessionless_app_folds_ingested_events_into_the_same_projection() -> None:
    events = sample_events(live_run=True)
    app = CopilotApp()
    async with app.run_test(size=(160, 48)) as pilot:
        for event in events:
            app.ingest(event)
        await wait_until(pilot, lambda: app.state.last_seq == events[-1].seq, what="the events folded")
        assert set(app.state.runs) == {"r1", "r2"}
        await wait_until(pilot, lambda: "offline oracle" in screen_text(app), what="the header")


async def test_rationale_streams_in_before_the_suggestion_lands() -> None:
    app = CopilotApp(state=sample_state(with_suggestion=False))
    async with app.run_test(size=(100, 30)) as pilot:
        next_event(app, s.SuggestionRequested(suggestion_id="g9"))
        app.ingest_delta("Raise the learning ")
        await wait_until(pilot, lambda: "Raise the learning" in screen_text(app), what="the first delta")
        app.ingest_delta("rate a little.")
        await wait_until(pilot, lambda: "Raise the learning rate a little." in screen_text(app), what="streamed text")
        assert "suggestion g9 · requested" in screen_text(app)


async def test_crashed_run_dialog_says_why_with_exit_code_and_last_lines() -> None:
    app = CopilotApp(state=sample_state(live_run=True))
    async with app.run_test(size=(100, 30)) as pilot:
        next_event(app, s.RunFinished(run_id="r2", outcome="crashed", exit_code=1,
                                      error_summary="CUDA out of memory (tried to allocate 2 GiB)",
                                      error_tail=["Traceback ...", "RuntimeError: CUDA out of memory"]))
        await wait_until(pilot, lambda: isinstance(app.screen, MessageModal) and "crashed" in screen_text(app),
                         what="the crash dialog")
        text = screen_text(app)
        assert "run r2 crashed" in text and "tried to allocate 2 GiB" in text
        assert "exit code 1" in text and "RuntimeError: CUDA out of memory" in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the dialog closed")
        assert app.state.runs["r2"].status == "crashed" and not app.state.live_runs


async def test_reached_target_is_a_titled_notification_not_a_dialog() -> None:
    app = CopilotApp(state=sample_state(live_run=True))
    async with app.run_test(size=(100, 30)) as pilot:
        next_event(app, s.RunFinished(run_id="r2", outcome="reached_target", reached_target=True,
                                      time_to_target_ms=1800.0))
        await wait_until(pilot, lambda: app._notifications, what="the notification")
        note = list(app._notifications)[-1]
        assert note.title == "run finished" and "reached the target in 1.8s" in note.message
        assert isinstance(app.screen, MainScreen)


async def test_errors_are_titled_for_a_person() -> None:
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        app.show_error(ProviderError("HTTP 503 from http://127.0.0.1:1/v1"), "request_suggestion")
        app.show_error(SpeedcopilotError("guard blocked the run"), "start_run")
        app.show_error(KeyError("oops"), "undo")
        await wait_until(pilot, lambda: len(app._notifications) == 3, what="three notifications")
        titles = [n.title for n in app._notifications]
        assert titles == ["model unavailable", "run not started", "unexpected error: could not undo"]
        assert "--provider oracle" in list(app._notifications)[0].message


async def _cancel_a_git_worker_before_it_starts(tmp_path: Path) -> None:
    """Open a live session, start the working-copy check and cancel its worker in the same turn, then close.
    Everything it made is this coroutine's: once it returns, a collection can take all of it."""
    app = CopilotApp(live_session(tmp_path), clock=FakeClock())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.session is not None and app.ui.script_text != "", what="the session open")
        before = set(app.workers)
        app.action_check_edits()
        started = [worker for worker in app.workers if worker not in before]
        assert [worker.name for worker in started] == ["check_external_edit"]
        started[0].cancel()  # in the same turn: its task has not taken a step
        # a task cancelled before its first step never runs the worker's body, so its state is not updated;
        # the manager lets it go when the task is done
        await wait_until(pilot, lambda: started[0] not in list(app.workers), what="the worker gone")
        await app.close_and_exit(False)


async def test_a_worker_cancelled_before_it_starts_leaves_no_coroutine_unawaited(tmp_path: Path) -> None:
    """As the app closes, Textual cancels a worker that may not have started yet. The worker is handed the function,
    so no coroutine was made for it; were it handed `self._check_external_edit(...)`, that coroutine would be
    collected un-awaited (a RuntimeWarning that the suite turns into an error)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await _cancel_a_git_worker_before_it_starts(tmp_path)
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []


async def test_decision_time_is_time_spent_on_each_hunk(tmp_path: Path) -> None:
    clock = FakeClock()
    app = CopilotApp(live_session(tmp_path), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await ask_for_suggestion(pilot)
        clock.advance(0.8)
        await pilot.press("a")
        clock.advance(0.4)
        await pilot.press("x")
        await pilot.press("a")  # no time spent on the third
        await wait_until(pilot, lambda: len(app.ui.staged) == 3, what="three decisions")
        times = [d.decision_time_s for _, d in sorted(app.ui.staged.items())]
        assert times == [0.8, 0.4, 0.0]
        await app.close_and_exit(False)


async def test_pinned_runs_stay_on_the_chart() -> None:
    app = app_for(live_run=True)
    async with app.run_test(size=(160, 48)) as pilot:
        chart = app.screen.query_one(LossChart)
        table = app.screen.query_one(RunTable)
        await wait_until(pilot, lambda: table.row_count == 2 and chart.series, what="runs")
        assert {x.label for x in chart.series if x.kind == "val"} == {"r2 val"}
        await pilot.press("3")
        await wait_until(pilot, lambda: table.has_focus, what="the run table focused")
        await pilot.press("up")  # select the finished run r1 (r2 is live, so shown anyway)
        await wait_until(pilot, lambda: app.ui.selected_run == "r1", what="r1 selected")
        await pilot.press("p")
        await wait_until(pilot, lambda: app.ui.pinned_runs == ["r1"], what="r1 pinned")
        await pilot.press("down")
        await wait_until(pilot, lambda: app.ui.selected_run == "r2", what="r2 selected")
        await wait_until(pilot, lambda: {x.label for x in chart.series if x.kind == "val"} == {"r1 val", "r2 val"},
                         what="both runs on the chart")


async def test_new_runs_fill_the_run_table_without_moving_the_log_tail() -> None:
    app = CopilotApp(state=sample_state(finished_run=False, with_suggestion=False))
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(RunTable)
        tail = app.screen.query_one("#log-tail", Log)
        await wait_until(pilot, lambda: tail.region.height > 0 and app.flushes > 0 and not app.redraw_pending(),
                         what="the runs pane drawn")
        await pilot.pause()
        empty = (table.region, tail.region)
        for number in range(1, 8):  # more runs than the table shows: it scrolls
            next_event(app, s.RunStarted(run_id=f"r{number}", commit="c" * 40, command=["python"], runner="local"))
            await wait_until(pilot, lambda: table.row_count == number, what=f"run {number} in the table")
            await pilot.pause()
            assert (table.region, tail.region) == empty  # a fixed table: no layout pass moves the tail
