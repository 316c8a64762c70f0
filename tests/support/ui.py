"""Helpers for the UI tests: hand-written session events (a small but complete session) and waiting."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from copilot.core.edits import Hunk
from copilot.core.session import schema as s
from copilot.core.session.events import Event
from copilot.core.session.projection import SessionState
from tests.support.waiting import HANG_GUARD_S

T0 = 1_700_000_000.0
START = "a" * 40
C1 = "b" * 40


class EventMaker:
    """Events through the schema, as the session writes them (a field the schema lacks fails here)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, body: s.EventBody) -> Event:
        event = Event.of(len(self.events) + 1, T0 + len(self.events), body)
        self.events.append(event)
        return event


def metric_points(run_id: str, steps: int = 20, start: float = 6.0, every: int = 5) -> list[s.Metric]:
    """A falling loss curve: train lines every step, val lines every `every` steps."""
    out = []
    for step in range(1, steps + 1):
        t_ms = step * 100.0
        loss = start * math.exp(-step / 12) + 3.0
        out.append(s.Metric(run_id=run_id, step=step, total_steps=steps, train_loss=loss, train_time_ms=t_ms,
                            step_avg_ms=100.0))
        if step % every == 0:
            out.append(s.Metric(run_id=run_id, step=step, total_steps=steps, val_loss=loss + 0.05,
                                train_time_ms=t_ms))
    return out


def hunk(index: int, search: str, replace: str, path: str = "train_gpt.py") -> Hunk:
    return Hunk(index=index, path=path, search=search, replace=replace)


def sample_events(with_suggestion: bool = True, finished_run: bool = True, live_run: bool = False) -> list[Event]:
    m = EventMaker()
    m.add(s.SessionStarted(session_id="s-test", mode="copilot", track="micro", record=5, target_val_loss=3.28,
                           provider="oracle", model="oracle", provider_label="offline oracle", offline=True,
                           hint_levels=[], record_time_s=12.5, next_record_time_s=10.0, start_commit=START,
                           branch="main"))
    if finished_run:
        m.add(s.RunStarted(run_id="r1", commit=START, command=["python", "train_gpt.py"], runner="local"))
        for metric in metric_points("r1"):
            m.add(metric)
        m.add(s.RunFinished(run_id="r1", outcome="reached_target", reached_target=True, time_to_target_ms=1500.0,
                            final_val_loss=3.25, train_time_ms=2000.0, wall_time_s=3.1, exit_code=0))
    m.add(s.SuggestionRequested(suggestion_id="g1", instruction="speed up the optimizer"))
    m.add(s.SuggestionReceived(suggestion_id="g1", rationale="Raise the LR and warm up faster.",
                               hunks=[hunk(0, "lr = 0.01\n", "lr = 0.02\n"),
                                      hunk(1, "warmup = 100\n", "warmup = 50\n")],
                               prompt_tokens=1200, completion_tokens=300, cost_usd=0.0, latency_s=0.4))
    m.add(s.CommitCreated(sha=C1, parent=START, branch="main", provenance="ai", message="raise lr",
                          suggestion_id="g1", hunks_accepted=[0]))
    m.add(s.SuggestionDecided(suggestion_id="g1", commit=C1, decisions=[
        s.HunkDecision(0, "accept", decision_time_s=2.0),
        s.HunkDecision(1, "reject", feedback="keep warmup", decision_time_s=3.0)]))
    if with_suggestion:
        m.add(s.SuggestionRequested(suggestion_id="g2"))
        m.add(s.SuggestionReceived(suggestion_id="g2", rationale="Three small changes.",
                                   hunks=[hunk(i, f"x{i} = {i}\n", f"x{i} = {i + 10}\n") for i in range(3)],
                                   prompt_tokens=900, completion_tokens=200, latency_s=0.2))
    if live_run:
        m.add(s.RunStarted(run_id="r2", commit=C1, command=["python", "train_gpt.py"], runner="local"))
        for metric in metric_points("r2", steps=10):
            m.add(metric)
    return m.events


def sample_state(**kwargs: Any) -> SessionState:
    return SessionState.from_events(sample_events(**kwargs))


def screen_text(app: Any) -> str:
    """The current screen as plain text (what a human would read), for asserting on rendered content."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, force_terminal=True,
                      color_system="truecolor", legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False)




async def wait_until(pilot: Any, predicate: Any, timeout_s: float = HANG_GUARD_S, what: str = "condition") -> None:
    """Let the app run (timers, workers) until predicate() holds. The deadline is a hang guard, never a speed
    check: a shorter `timeout_s` given by a caller is raised to HANG_GUARD_S."""
    import time

    timeout_s = max(timeout_s, HANG_GUARD_S)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    assert predicate(), f"timed out after {timeout_s}s waiting for {what}"


def notifications(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


class FakeClock:
    """The app's decision clock, moved by the test: decision times are exact, whatever the machine's load."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def footer_line(app: Any) -> str:
    """The footer: the last line of the screen with anything on it."""
    return [line for line in screen_text(app).splitlines() if line.strip()][-1]


def live_session(tmp_path: Path) -> Any:
    """A real co-pilot session of the fixture track, record 0, with the offline oracle."""
    from copilot.core.llm.providers import OracleProvider
    from copilot.core.session import Session
    from tests.support.fixture_track import FixtureTrack

    track = FixtureTrack()
    return Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))


async def ask_for_suggestion(pilot: Any) -> list[Hunk]:
    """Press s, take the empty instruction, and wait for the oracle's hunks to be on screen and focused."""
    from copilot.ui.screens.modals import TextPrompt
    from copilot.ui.widgets.hunk_card import HunkCard

    app = pilot.app
    await pilot.press("s")
    await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt), what="the instruction prompt")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.focused, HunkCard), what="the first hunk focused")
    view = app.state.current_suggestion
    assert view is not None and view.status == "received"
    return list(view.hunks)
