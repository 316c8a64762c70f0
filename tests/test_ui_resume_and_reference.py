"""Two things a user sees in a real session (FixtureTrack, offline oracle, git, real training subprocesses):
the runs pane's log tail goes on following a run left training across a quit and a `--resume`, and the loss
chart draws the record's own reference curve as soon as the session is open.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import pytest
from textual.widgets import Log

from copilot.core.llm.providers import OracleProvider
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session import Session
from copilot.ui.app import CopilotApp
from copilot.ui.screens.modals import QuitModal
from copilot.ui.widgets.loss_chart import ChartSeries, LossChart
from tests.support.fixture_track import RECORD_0, FixtureTrack
from tests.support.ui import wait_until

SIZE = (120, 40)
HELD = "holding for the test"
AFTER = [f"after the resume {i}" for i in range(3)]


def held_track(go: Path) -> FixtureTrack:
    """A fixture track whose record-0 script prints HELD after step 2, waits until `go` exists, then prints
    the AFTER lines and trains on to its end (a condition, not a race against a sub-second run)."""
    track = FixtureTrack()
    hold = (f"        if step == 2:\n"
            f"            print({HELD!r}, flush=True)\n"
            f"            for _ in range(12000):  # gives up after about four minutes\n"
            f"                if pathlib.Path({str(go)!r}).exists():\n"
            f"                    break\n"
            f"                time.sleep(0.02)\n"
            f"            for line in {AFTER!r}:\n"
            f"                print(line, flush=True)\n")
    script = (RECORD_0.replace("import sys, time", "import pathlib, sys, time")
              .replace("        time.sleep(SLEEP_S)\n", hold + "        time.sleep(SLEEP_S)\n"))
    assert script.count(HELD) == 1, "the fixture script changed: the hold was not inserted"
    track._scripts = {**track._scripts, 0: script}
    return track


async def test_the_log_tail_follows_a_run_after_resume(tmp_path: Path) -> None:
    """A run left training on quit is re-attached by a new app on the resumed session, and what it prints
    after the resume shows up in the runs pane's log tail (the widget on screen), each line once."""
    go = tmp_path / "go"
    track = held_track(go)
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    app = CopilotApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: app.state.live_runs, what="a live run")
        run_id = app.state.live_runs[0].run_id
        await wait_until(pilot, lambda: HELD in app.ui.logs.lines(run_id), what="the run to reach its hold")
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitModal), what="the quit question")
        await pilot.press("l")  # leave it running
        await wait_until(pilot, lambda: app.closed, what="the app closed")
    assert app.quit_choice == "leave"
    assert not any(line in app.ui.logs.lines(run_id) for line in AFTER)  # still held: nothing printed yet

    resumed_track = held_track(go)
    resumed = Session.open(tmp_path / "sessions", session.id, resumed_track, OracleProvider(resumed_track, 0))
    app2 = CopilotApp(resumed)
    async with app2.run_test(size=SIZE) as pilot:
        tail = app2.screen.query_one("#log-tail", Log)
        await wait_until(pilot, lambda: tail.run_id == run_id and HELD in tail.lines,
                         what="the re-attached run's tail on screen")
        assert app2.state.runs[run_id].is_live and not any(line in tail.lines for line in AFTER)
        go.touch()  # the run may go on now: everything below is printed after the resume
        await wait_until(pilot, lambda: all(line in tail.lines for line in AFTER),
                         what="the lines printed after the resume in the log tail")
        await wait_until(pilot, lambda: app2.state.runs[run_id].result is not None, what="the run's end")
        await wait_until(pilot, lambda: not app2.redraw_pending() and "step:30/30" in "".join(tail.lines),
                         what="the run's last line in the log tail")
        shown = list(tail.lines)
        assert [shown.count(line) for line in AFTER] == [1, 1, 1], shown
        assert shown.count(HELD) == 1, "a line printed before the quit is shown once, not once per reading"
        assert shown.index(HELD) < shown.index(AFTER[0]) < shown.index(AFTER[-1])
        await pilot.press("q")
        await wait_until(pilot, lambda: app2.closed, what="the app closed")


class CurvedFixtureTrack(FixtureTrack):
    """The fixture track, with each record's reference curve being the val curve its own script prints (the
    FixtureTrack's own `reference_curve` is a single point, the same for every record)."""

    SHAPES = {0: (30, 0.97), 1: (25, 0.94)}  # steps, loss decay per step: RECORD_0 and RECORD_1
    STEP_MS = 10.0
    VAL_EVERY = 5

    def reference_curve(self, number: int) -> list[MetricPoint]:
        self.record(number)
        steps, decay = self.SHAPES[number]
        return [MetricPoint(step=step, total_steps=steps, val_loss=4.0 * decay ** step,
                            train_time_ms=step * self.STEP_MS)
                for step in range(steps + 1) if step % self.VAL_EVERY == 0 or step == steps]


def new_session(tmp_path: Path) -> Session:
    track = CurvedFixtureTrack()
    return Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))


def reference_of(chart: LossChart) -> list[ChartSeries]:
    return [x for x in chart.series if x.kind == "reference"]


@pytest.mark.parametrize("opened", ["session", "factory"])
async def test_the_loss_chart_draws_the_records_reference_curve_in_a_real_session(tmp_path: Path,
                                                                                   opened: str) -> None:
    """Opening a real session (given to the app, or built by a factory after the first frame) puts record 0's
    own val curve on the loss chart, before any run, labelled "record" in the plot's legend."""
    release = threading.Event()
    built: list[Session] = []

    def factory() -> Session:
        release.wait(60)  # opened only once the test has seen the first frame without a session
        built.append(new_session(tmp_path))
        return built[0]

    target: Session | Callable[[], Session] = new_session(tmp_path) if opened == "session" else factory
    app = CopilotApp(target)
    async with app.run_test(size=SIZE) as pilot:
        if opened == "factory":
            await wait_until(pilot, lambda: app.ui.opening, what="the first frame, still opening")
            assert app.session is None and app.ui.reference == []
            release.set()
        await wait_until(pilot, lambda: app.session is not None and app.screen.query(LossChart),
                         what="the session open and the chart composed")
        chart = app.screen.query_one(LossChart)
        await wait_until(pilot, lambda: reference_of(chart) and chart._drawn, what="the record's curve drawn")
        expected = CurvedFixtureTrack().reference_curve(0)
        ref, = reference_of(chart)
        assert ref.label == "record"
        assert ref.xs == [p.train_time_ms / 1000 for p in expected]  # record 0's curve, not record 1's
        assert ref.ys == [p.val_loss for p in expected]
        assert not app.state.runs  # drawn from the track, not from a run
        assert any(x.kind == "target" and x.ys == [2.0, 2.0] for x in chart.series)
        plot = chart._plot()
        assert plot is not None and "record" in plot._labels  # in the legend on screen
        await pilot.press("q")
        await wait_until(pilot, lambda: app.closed, what="the app closed")
    if opened == "factory":
        assert built and not built[0].log.is_open
