"""CopilotApp: the wiring. One screen, one driver (co-pilot, agent or replay), one inbox and one flush.

Events from the session (any thread) land in the inbox; every FLUSH_INTERVAL_S the flush folds them into the
app's projection and posts one StateUpdated to the panes, which render themselves (view.py). Actions live in
mixins by concern (actions/); they await the session's coroutines in workers, and every worker's error reaches
`on_worker_state_changed`. The app holds the session's projection and the UI's transient state, nothing else.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from textual.app import App
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from copilot.core.errors import EditApplyError, ProviderError, SpeedcopilotError, WorkspaceError
from copilot.core.session.events import Event
from copilot.core.session.projection import SessionState
from copilot.ui.actions.agent import AgentActions
from copilot.ui.actions.replay import ReplayActions
from copilot.ui.actions.review import ReviewActions
from copilot.ui.actions.view import ViewActions
from copilot.ui.actions.work import WorkActions
from copilot.ui.collector import CollectorPauses
from copilot.ui.commands import CopilotCommands
from copilot.ui.drivers import (
    HUNK_ACTIONS,
    REPLAY_ACTIONS,
    SESSION_ACTIONS,
    AgentDriver,
    CopilotDriver,
    Driver,
    ReplayDriver,
)
from copilot.ui.keys import app_bindings
from copilot.ui.panes.suggestion import SuggestionPane
from copilot.ui.screens.main import LayoutChanged, MainScreen
from copilot.ui.screens.modals import MessageModal
from copilot.ui.themes import CHART_VARIABLES, DEFAULT_THEME, load_themes
from copilot.ui.view import (
    PANES, Painted, RedrawTurns, RedrawWanted, StateUpdated, Timeline, UIState, View, dirty_for,
)
from copilot.ui.widgets.log_tail import read_tail

if TYPE_CHECKING:
    from copilot.core.session import Session

FLUSH_INTERVAL_S = 0.1
DIAG_ENV = "SPEEDCOPILOT_UI_DIAGNOSTICS"  # a file path: the app writes first-frame timing there (benchmarks)
ThemeSaved = Callable[[str], None]

# What a failed worker's notification is titled: a person reads it, not a method name.
ERROR_TITLES = {
    "request_suggestion": "suggestion failed", "decide": "could not apply the decisions",
    "start_run": "run not started", "cancel_run": "could not cancel the run", "undo": "could not undo",
    "checkout": "could not branch", "check_external_edit": "could not read the working copy",
    "commit_external_edit": "could not commit your edit", "open": "could not open the session",
    "previews": "could not preview the hunks", "script": "could not read the script", "agent": "the agent stopped",
    "player": "replay error", "guard": "could not record the choice", "doctor": "could not check the machine",
}


class CopilotApp(ReviewActions, WorkActions, AgentActions, ReplayActions, ViewActions, App[int]):
    """The co-pilot TUI over any driver. `session` may be a Session, or a callable that builds one after the
    first frame; `driver` overrides the choice the session's mode makes (a replay passes its ReplayDriver)."""

    CSS_PATH = "app.tcss"
    TITLE = "speedcopilot"
    COMMANDS = App.COMMANDS | {CopilotCommands}
    BINDINGS = app_bindings()
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        session: "Session | Callable[[], Session] | None" = None,
        *,
        driver: Driver | None = None,
        state: SessionState | None = None,
        theme: str | None = None,
        on_theme_saved: ThemeSaved | None = None,
        theme_dirs: tuple[Path, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._init_t = time.time()
        self.clock = clock  # decision timing; tests inject their own
        self._session_factory: Callable[[], Session] | None = None
        if session is not None and not hasattr(session, "subscribe") and callable(session):
            self._session_factory, session = session, None
        self.driver: Driver = driver or Driver(session)
        self._pending_session = session
        self.startup_error: BaseException | None = None
        self.state = state if state is not None else SessionState()  # a viewer with no session renders this
        self.ui = UIState(opening=self._session_factory is not None)
        self.collector = CollectorPauses()
        self.on_theme_saved = on_theme_saved
        self._themes = load_themes(*theme_dirs)
        for item in self._themes:
            self.register_theme(item)
        self._initial_theme = theme or DEFAULT_THEME
        self._inbox: deque[Event] = deque()
        self._deltas: deque[str] = deque()
        self._dirty: set[str] = set(PANES)
        self._turns = RedrawTurns()  # one large pane redrawn per flush
        self._drawn_cursor: tuple[int, int] | None = None  # replay: (cursor, events) last drawn
        self._edit_timer: Any = None
        self._edit_prompt_open = False
        self.closed = False
        self.stop_at_target = False  # co-pilot runs end at the target (config stop_at_target)
        self.quit_choice: str | None = None
        self.flushes = 0
        self.flush_timer: Timer | None = None  # every FLUSH_INTERVAL_S once mounted
        self._bindings_signature: tuple | None = None

    # -- the parts the actions use ------------------------------------------------------------------
    @property
    def session(self) -> "Session | None":
        return self.driver.session

    def need_session(self) -> "Session | None":
        if self.session is None:
            opening = self._session_factory is not None and self.startup_error is None
            self.notify("the session is still opening…" if opening else "read-only view: no live session",
                        severity="warning")
        return self.session

    def main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen if screen.is_mounted else None
        return None

    def live_run_ids(self) -> list[str]:
        """The runs training now, with what has arrived folded first: an action that asks about live runs must
        not offer one whose end is already logged but not yet flushed (quit once waited on such a question)."""
        if self.session is None:
            return []
        self.flush()
        return [run.run_id for run in self.state.live_runs]

    def mark_dirty(self, *panes: str) -> None:
        self._dirty.update(panes)

    def redraw_pending(self) -> bool:
        """An event, a log line, a stream delta or a pane's redraw still waits for a flush (heavy panes take
        turns, so one flush may leave some for the next). Tests and benches wait for this to turn False."""
        return bool(self._inbox or self._dirty or self._deltas or self.ui.logs.has_pending())

    def start(self, work: Callable[[], Awaitable[Any]], name: str, group: str = "default") -> Worker[Any]:
        """Run `work()` in a worker whose errors reach `on_worker_state_changed`. It takes the function, not a
        coroutine: a worker cancelled before it starts (the app closing) then has made no coroutine to leak."""
        if not callable(work):  # a coroutine handed by mistake: say so here, not from inside the worker
            raise TypeError(f"start() takes an async function, not {type(work).__name__}")

        async def run() -> Any:
            return await work()

        return self.run_worker(run, name=name, group=group, exit_on_error=False)

    # -- lifecycle ------------------------------------------------------------------------------------
    def get_default_screen(self) -> MainScreen:
        # while a session is built off the loop the first frame is light (header, a line, footer); the panes
        # are composed when it is open
        return MainScreen(replay=isinstance(self.driver, ReplayDriver), log_tail_of=self._log_tail_of,
                          opening=self._session_factory is not None)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        theme = self.current_theme
        return {name: getattr(theme, fallback, None) or theme.primary for name, fallback in CHART_VARIABLES.items()}

    def on_mount(self) -> None:
        try:
            self.theme = self._initial_theme
        except Exception:  # unknown theme name in the config: keep going with ours
            self.theme = DEFAULT_THEME
            self.notify(f"unknown theme {self._initial_theme!r}; using {DEFAULT_THEME}", severity="warning")
        self._saved_theme = self.theme
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        if isinstance(self.driver, ReplayDriver):
            for problem in self.driver.player.problems:
                self.notify(problem, severity="warning")
            self.ui.reference = list(self.driver.reference)
            self.driver.start(self)
            self.call_after_refresh(self.collector.start)
        elif self._pending_session is not None:
            self.connect(self._pending_session)
        elif self._session_factory is not None:
            # after the first frame: building it in parallel would compete with that frame for the CPU
            self.call_after_refresh(self._open_session, self._session_factory)
        self.flush_timer = self.set_interval(FLUSH_INTERVAL_S, self.flush)
        if os.environ.get(DIAG_ENV):
            self.call_after_refresh(self._write_diagnostics, Path(os.environ[DIAG_ENV]))

    def _open_session(self, factory: "Callable[[], Session]") -> None:
        async def build() -> None:
            try:
                session = await asyncio.to_thread(factory)
            except BaseException as exc:  # shown by run_app once the terminal is restored
                self.startup_error = exc
                self.call_after_refresh(self.exit, 1)  # exiting mid-mount trips Textual's tabs
                return
            self.connect(session)

        self.start(build, "open", group="open")

    def connect(self, session: "Session") -> None:
        """Start rendering a live session: subscribe to its events and run lines, let its runs be watched,
        and hand it to the driver its mode asks for."""
        self.ui.opening = False
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.opening = False  # recomposes with the panes
        self.state = copy.deepcopy(session.state)
        session.subscribe(self.ingest)
        session.subscribe_lines(self.ingest_line)
        if self.state.last_seq < session.state.last_seq:  # appended between the copy and subscribing
            self.state = copy.deepcopy(session.state)
        session.resume_watching()
        self._load_reference(session.track, session.state.record)
        self.use_driver(self._driver_for(session))
        self.offer_baseline()
        self.start(self._load_script, "script", group="script")
        if getattr(session.track, "name", "") == "nanogpt":
            self.start(partial(self._doctor, session), "doctor", group="doctor")
        self._dirty |= PANES
        self.call_after_refresh(self.collector.start)  # the session and the panes are long-lived from here

    def _driver_for(self, session: "Session") -> Driver:
        if session.state.mode != "auto":
            return CopilotDriver(session)
        return self.agent_driver(session)

    def agent_driver(self, session: "Session", switched_by: str = "agent",
                     events: list[Any] | None = None) -> AgentDriver:
        """The agent the session's log configures (policy, budget, seed, parallel), to drive it from where its
        search stands: when the app opens an autonomous session, or when a human hands one back (`events`: the
        log, when the caller has read it already)."""
        from copilot.agent.budget import Budget
        from copilot.agent.loop import AutonomousAgent
        from copilot.agent.policies import DEFAULT_NODES, Policy, get_policy
        from copilot.agent.tree import AgentTree
        from copilot.core.session.events import EVENTS_FILE, read_events

        if events is None:
            events = read_events(session.dir / EVENTS_FILE).events
        saved = AgentTree.from_events(events).config or {}
        budget_fields = dict(saved.get("budget") or session.options.budget or {})
        budget_fields.setdefault("nodes", DEFAULT_NODES)
        budget = Budget.from_dict(budget_fields)
        policy = Policy.from_dict(saved["policy"]) if saved.get("policy") else get_policy("tree", budget.nodes)
        agent = AutonomousAgent(session, policy, budget, int(saved.get("seed", 0) or 0), close_on_finish=False,
                                allow_guard_override=session.options.agent_guard_override,
                                parallel=int(saved.get("parallel", 1) or 1), mode_changed_by=switched_by)
        if switched_by == "agent":  # a hand-back says so itself
            self.notify(f"autonomous mode: policy {policy.name}, {budget_fields['nodes']} nodes · P pause/resume · "
                        "T take over")
        return AgentDriver(session, agent)

    def use_driver(self, driver: Driver) -> None:
        """Swap who drives the screen; the session, its runs and the subscriptions stay."""
        if driver is self.driver:
            return
        old, self.driver = self.driver, driver
        old.stop()
        driver.start(self)
        self._dirty |= PANES
        self.refresh_bindings()

    def _load_reference(self, track: Any, record: int) -> None:
        """The record's own val curve for the chart (loaded once the session, and so its record, is known)."""
        try:
            self.ui.reference = list(track.reference_curve(record))
        except Exception as exc:  # a track without a curve must not break the chart
            self.log.warning(f"no reference curve: {exc}")
        self._dirty.add("chart")

    def _log_tail_of(self, run_id: str) -> list[str]:
        """A run's last output lines from its output.log, scrubbed like every line the session hands out: the
        file holds what the script printed, secrets and all."""
        session = self.session
        if session is None:
            return []
        if session.is_watching(run_id):  # its watcher hands out every line from the start: reading the file
            return []                    # too would show the lines it had not read yet twice
        return session.scrub.lines(read_tail(session.dir / "runs" / run_id / "output.log"))

    def on_unmount(self) -> None:
        self.collector.stop()
        self.driver.stop()
        if self.session is not None:
            self.session.unsubscribe(self.ingest)
            self.session.unsubscribe_lines(self.ingest_line)
        if os.environ.get(DIAG_ENV):  # torch must stay out for the whole life of the app, not just frame one
            import sys

            exit_path = Path(os.environ[DIAG_ENV] + ".exit")
            exit_path.write_text(json.dumps({"torch_imported": "torch" in sys.modules, "modules": len(sys.modules)}))

    def _write_diagnostics(self, path: Path) -> None:
        """For bench/app_startup.py: when the first frame was drawn, and whether torch got imported."""
        import sys

        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"first_frame_t": time.time(), "app_init_t": self._init_t,
                                   "torch_imported": "torch" in sys.modules, "modules": len(sys.modules)}))
        tmp.replace(path)  # readers never see a half-written file

    # -- intake (any thread) ----------------------------------------------------------------------------
    def ingest(self, event: Event) -> None:
        """An event from the session (or a test); folded at the next flush."""
        self._inbox.append(event)

    def ingest_line(self, run_id: str, line: str) -> None:
        self.ui.logs.append(run_id, line)
        self._dirty.add("runs")

    def ingest_delta(self, text: str) -> None:
        self._deltas.append(text)

    # -- the one flush ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Fold the inbox into the projection, then post one StateUpdated to the panes naming what changed."""
        self.flushes += 1
        self.collector.tick()
        replayed = self.driver.replayed_state()
        if replayed is not None:
            self._follow_replay(replayed)
        while self._inbox:
            event = self._inbox.popleft()
            if replayed is None:
                if event.seq and event.seq <= self.state.last_seq:
                    continue  # already in the copied state
                self.state.apply(event)
            self._dirty |= dirty_for(event.type)
            self._react(event)
        if self._deltas:
            chunk = "".join(self._deltas)
            self._deltas.clear()
            current = self.state.current_suggestion
            key = current.id if current is not None and current.status == "requested" else ""
            self.ui.stream[key] = self.ui.stream.get(key, "") + chunk
            self._dirty.add("suggestion")
        if self.ui.logs.has_pending():
            self._dirty.add("runs")  # the log pane writes a burst over several flushes
        screen = self.main()
        if screen is None or not self._dirty:
            return
        dirty, self._dirty = self._turns.take(self._dirty)
        view = View(self.state, self.ui, self.driver.name, self.size.width)
        screen.broadcast(lambda: StateUpdated(view, dirty))
        self._refresh_bindings_if_changed()

    def _refresh_bindings_if_changed(self) -> None:
        """The footer recomposes on every refresh_bindings (a re-layout of the screen): only when what the
        human may do has changed."""
        current = self.state.current_suggestion
        signature = (self.driver.name, self.ui.opening, len(self.screen_stack),
                     current.status if current else None, bool(current and current.hunks),
                     self.driver.allows("agent_pause") if self.driver.name == "agent" else None)
        if signature != self._bindings_signature:
            self._bindings_signature = signature
            self.refresh_bindings()

    def _follow_replay(self, replayed: SessionState) -> None:
        player = self.driver.player  # type: ignore[attr-defined]
        if replayed is not self.state or self._drawn_cursor != (player.cursor, len(player.events)):
            head_moved = replayed.head != self.ui.script_head
            self.state = replayed
            self._drawn_cursor = (player.cursor, len(player.events))
            self._dirty |= PANES
            if head_moved:
                self.start(partial(self._load_replayed_script, replayed.head), "script", group="script")
        self.ui.timeline = _timeline(player)
        self._dirty.add("timeline")

    def _react(self, event: Event) -> None:
        """What an event sets going besides redrawing: script reloads, previews, the end of a run."""
        if self.driver.name == "replay":
            return
        if event.type in ("commit_created", "branch_switched"):
            self.start(self._load_script, "script", group="script")
        elif event.type == "suggestion_received":
            self.start(partial(self.load_previews, event.get("suggestion_id")), "previews", group="previews")
        elif event.type == "run_finished":
            self._report_run_finished(event)

    def on_painted(self, message: Painted) -> None:
        self._turns.painted()

    def on_redraw_wanted(self, message: RedrawWanted) -> None:
        self.mark_dirty(message.part)

    def on_layout_changed(self, message: LayoutChanged) -> None:
        self._dirty |= PANES
        self.flush()

    def on_suggestion_pane_cards_shown(self, message: SuggestionPane.CardsShown) -> None:
        """New hunk cards are on screen: their review time starts now, and the first takes the focus if the
        human reviews or watches a replay (not while the agent decides) and is not busy in another pane. A focus
        change repaints the whole screen."""
        now = self.clock()
        for index in message.indices:
            self.ui.shown_at.setdefault((message.suggestion_id, index), now)
        self.ui.selected_hunk = 0
        view = self.state.suggestions.get(message.suggestion_id)
        screen = self.main()
        if (view is not None and view.status == "received" and screen is not None and self.driver.name != "agent"
                and screen.pane_visible("suggestion")):
            self.call_after_refresh(self._focus_hunk, 0, True)

    async def _doctor(self, session: "Session") -> None:
        """At start, what would make a run fail (no GPU, no shards, the wrong torch): a warning, never a crash."""
        from copilot.core.tracks.doctor import run_doctor

        report = await asyncio.to_thread(run_doctor, session.track, record=session.state.record,
                                         gpus=session.options.gpus, runner_url=session.options.runner_url)
        problems = report.failures() + report.warnings()
        if problems:
            severity = "error" if report.failures() else "warning"
            text = "\n".join(c.line() for c in problems[:4])
            self.notify(f"{text}\n(speedcopilot doctor shows every check)", title="before you run",
                        severity=severity, timeout=20)

    # -- scripts ----------------------------------------------------------------------------------------
    async def _load_script(self) -> None:
        session = self.session
        if session is None or not session.log.is_open:
            return
        text, diff = await session.script_and_diff()
        self.ui.script_text, self.ui.diff_text = text, diff
        self.ui.script_head = session.state.head
        self._dirty.add("script")

    async def _load_replayed_script(self, head: str | None) -> None:
        player = self.driver.player  # type: ignore[attr-defined]
        if not head:
            self.ui.script_text, self.ui.script_head = "", None
            self._dirty.add("script")
            return
        try:
            text = await asyncio.to_thread(player.script_at, head)
        except SpeedcopilotError as exc:
            text = f"# {exc}"
        if self.state.head == head:  # a later seek asked for another commit: drop this one
            self.ui.script_text, self.ui.script_head = text, head
            self._dirty.add("script")

    # -- runs -------------------------------------------------------------------------------------------
    def _report_run_finished(self, event: Event) -> None:
        body = event.body
        outcome = getattr(body, "outcome", "finished")
        run_id = getattr(body, "run_id", "")
        if outcome == "reached_target" or getattr(body, "reached_target", False):
            ttt = getattr(body, "time_to_target_ms", None)
            when = f" in {ttt / 1000:.1f}s" if isinstance(ttt, (int, float)) else ""
            self.notify(f"run {run_id} reached the target{when}", title="run finished")
        elif outcome in ("crashed", "diverged", "hung", "no_metric"):
            summary = getattr(body, "error_summary", None)
            tail = "\n".join(getattr(body, "error_tail", []) or [])
            code = getattr(body, "exit_code", None)
            parts = [summary or "", f"exit code {code}", tail]
            self.push_screen(MessageModal(f"run {run_id} {outcome}", "\n\n".join(p for p in parts if p)))
        else:
            self.notify(f"run {run_id}: {outcome}", title="run finished")

    # -- permissions ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in REPLAY_ACTIONS and len(self.screen_stack) > 1:
            return False  # a dialog is open: the replay's priority keys must not steal its typing
        if self.ui.opening and action in SESSION_ACTIONS - HUNK_ACTIONS:
            return True  # pressed before the session is open: the action says "still opening"
        if not self.driver.allows(action):
            return False
        if action in HUNK_ACTIONS:
            view = self.state.current_suggestion
            return view is not None and view.status == "received" and bool(view.hunks)
        return True

    # -- themes -----------------------------------------------------------------------------------------
    def _on_theme_changed(self, theme: Any) -> None:
        if theme.name == self._saved_theme:
            return  # the initial theme (or a repeat) is not a change to save
        self._saved_theme = theme.name
        if self.on_theme_saved is not None:
            try:
                self.on_theme_saved(theme.name)
            except Exception as exc:  # saving config must never take the app down
                self.notify(f"could not save the theme choice: {exc}", severity="warning")
        from copilot.ui.widgets.loss_chart import LossChart

        for chart in self.query(LossChart):
            chart.invalidate()  # its colours come from the theme
        self._dirty.add("chart")

    # -- closing ----------------------------------------------------------------------------------------
    async def close_and_exit(self, stop_runs: bool) -> None:
        self.driver.stop()
        # a request in flight logs its own cancellation: let it, before the log closes
        pending = [w for w in self.workers if w.group == "llm" and w.is_running]
        for worker in pending:
            worker.cancel()
        for worker in pending:
            try:
                await worker.wait()
            except Exception:  # cancelled or failed: its own handler logged it
                pass
        if self.session is not None and not self.closed:
            try:
                await self.session.close(reason="user", stop_runs=stop_runs)
            except SpeedcopilotError as exc:
                self.notify(str(exc), severity="error")
                return
        self.closed = True
        self.exit(0)

    # -- one place for worker outcomes ------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self.flush()  # the worker's events are queued: show them with its outcome
        if event.state != WorkerState.ERROR:
            return
        self._dirty.add("suggestion")
        self.show_error(event.worker.error, event.worker.name or event.worker.group)

    def show_error(self, error: BaseException | None, context: str = "") -> None:
        title = ERROR_TITLES.get(context, context.replace("_", " ") or "error")
        if isinstance(error, ProviderError):
            self.notify(f"{error}\nTip: start with --provider oracle to work offline.", title="model unavailable",
                        severity="error", timeout=12)
        elif isinstance(error, EditApplyError):
            self.notify(str(error), title="hunk does not apply", severity="error", timeout=12)
        elif isinstance(error, WorkspaceError) and self.session is not None and "uncommitted" in str(error).lower():
            self.notify(str(error), title="working copy has edits", severity="warning", timeout=10)
            self.start(partial(self._check_external_edit, quiet=True), "check_external_edit", group="git")
        elif isinstance(error, SpeedcopilotError):
            self.notify(str(error), title=title, severity="error", timeout=10)
        else:
            self.notify(f"{type(error).__name__}: {error}", title=f"unexpected error: {title}", severity="error",
                        timeout=12)


def _timeline(player: Any) -> Timeline:
    from copilot.core.session.replay import fmt_clock

    if player.at_end and not (player.follow and player.playing):
        mode = "■ end"
    elif player.paused:
        mode = "❚❚ paused"
    elif player.playing:
        mode = "▶ playing"
    else:
        mode = "■ stopped"
    if player.follow:
        mode += " · following"
    caption = (f"{mode} · {fmt_clock(player.position)} / {fmt_clock(player.duration)} · ×{player.speed:g}"
               f" · event {player.cursor}/{len(player.events)}")
    return Timeline(player.position, player.duration, tuple(player.decision_positions()), caption)


def run_app(
    session: "Session | Callable[[], Session]",
    theme: str | None = None,
    on_theme_saved: ThemeSaved | None = None,
    stop_at_target: bool = False,
) -> int:
    """Run the co-pilot until the human quits; the session is always closed afterwards.

    `session` may be a Session or a zero-argument callable that builds one: then the first frame is drawn
    while the session is created off the loop, and an error from the callable is re-raised here (after the
    terminal is restored) so the CLI prints it like any other.
    """
    app = CopilotApp(session, theme=theme, on_theme_saved=on_theme_saved)
    app.stop_at_target = stop_at_target
    try:
        result = app.run()
    finally:
        if app.session is not None and not app.closed:
            try:
                app.session.close_now(reason="ui-exit")
            except SpeedcopilotError:
                pass
    if app.startup_error is not None:
        raise app.startup_error
    return int(result or 0)


__all__ = ["CopilotApp", "SuggestionPane", "run_app"]
