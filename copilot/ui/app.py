"""CopilotApp: the live co-pilot. Renders a SessionState projection; acts only through Session methods.

Data flow: the session appends events → our subscriber queues them (any thread) → one 0.1 s timer folds the
queue into `self.state` and redraws only the panes whose data changed. Log lines and rationale deltas take the
same path through plain buffers. A replay driver can build the app with `session=None` and call `ingest(event)`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shlex
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import App
from textual.widgets import Static, TextArea
from textual.worker import Worker, WorkerState

from copilot.core.errors import EditApplyError, ProviderError, SpeedcopilotError, WorkspaceError
from copilot.core.session.events import Event
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session.projection import RunView, SessionState, SuggestionView
from copilot.ui.commands import CopilotCommands
from copilot.ui.keys import app_bindings
from copilot.ui.screens.help import HelpScreen
from copilot.ui.screens.main import MainScreen, status_text, suggestion_body, suggestion_title
from copilot.ui.screens.modals import ConfirmModal, EditHunkModal, MessageModal, QuitModal, TextPrompt
from copilot.ui.themes import CHART_VARIABLES, DEFAULT_THEME, load_themes
from copilot.ui.widgets.diff_view import DiffView
from copilot.ui.widgets.history_tree import HistoryTree
from copilot.ui.widgets.hunk_card import HunkCard, StagedDecision
from copilot.ui.widgets.log_tail import LogBuffers, LogTail, read_tail
from copilot.ui.widgets.loss_chart import LossChart
from copilot.ui.widgets.run_table import RunTable

if TYPE_CHECKING:
    from copilot.core.session import Session

FLUSH_INTERVAL_S = 0.1
DIAG_ENV = "SPEEDCOPILOT_UI_DIAGNOSTICS"  # a file path: the app writes first-frame timing there (benchmarks)
ThemeSaved = Callable[[str], None]

# which panes an event type makes stale
_DIRTY_BY_EVENT = {
    "session_started": {"header", "history", "script"},
    "session_resumed": {"header"},
    "suggestion_requested": {"suggestion"},
    "suggestion_received": {"suggestion"},
    "suggestion_failed": {"suggestion"},
    "hunk_decided": {"suggestion"},
    "commit_created": {"header", "history", "script", "suggestion"},
    "undo": {"header", "history", "script"},
    "branch_switched": {"header", "history", "script"},
    "run_started": {"header", "runs", "chart", "history"},
    "run_attached": {"runs"},
    "metric": {"runs", "chart"},
    "run_finished": {"header", "runs", "chart", "history"},
    "mode_changed": {"header"},
    "session_ended": {"header"},
}
ALL_PANES = {"header", "suggestion", "script", "runs", "chart", "history"}


class CopilotApp(App[int]):
    """The co-pilot TUI. `session=None` gives a read-only viewer fed through `ingest` (replay)."""

    CSS_PATH = "app.tcss"
    TITLE = "speedcopilot"
    COMMANDS = App.COMMANDS | {CopilotCommands}
    BINDINGS = app_bindings()
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        session: "Session | Callable[[], Session] | None" = None,
        *,
        state: SessionState | None = None,
        theme: str | None = None,
        on_theme_saved: ThemeSaved | None = None,
        reference_curve: list[MetricPoint] | None = None,
        theme_dirs: tuple[Path, ...] = (),
    ) -> None:
        super().__init__()
        self._init_t = time.time()
        # a callable builds the session in a worker after the first frame (see run_app)
        self._session_factory: Callable[[], Session] | None = None
        if session is not None and not hasattr(session, "subscribe") and callable(session):
            self._session_factory, session = session, None
        self.session = session
        self.startup_error: BaseException | None = None
        self.agent: Any = None  # the autonomous agent driving this session in --mode auto
        self._stop_watch: Callable[[], None] | None = None  # watchdog on the working copy
        self._edit_timer: Any = None
        self._edit_prompt_open = False
        if state is None:
            state = copy.deepcopy(session.state) if session is not None else SessionState()
        self.state: SessionState = state
        self.on_theme_saved = on_theme_saved
        self._themes = load_themes(*theme_dirs)
        for item in self._themes:
            self.register_theme(item)
        self._initial_theme = theme or DEFAULT_THEME
        self._reference = reference_curve
        # transient UI state (not in events until the human applies): staged decisions, timings, buffers
        self.staged: dict[tuple[str, int], StagedDecision] = {}
        self.shown_at: dict[tuple[str, int], float] = {}  # when each hunk card was first displayed
        self._last_decision_at: dict[str, float] = {}
        self.previews: dict[tuple[str, int], list[str]] = {}
        self.selected_hunk = 0
        self.stream: dict[str, str] = {}  # suggestion id (or "" before the id is known) -> streamed text
        self.logs = LogBuffers()
        self.pinned_runs: list[str] = []
        self.show_diff = False
        self.script_text = ""
        self.diff_text = ""
        self.closed = False
        self.quit_choice: str | None = None
        self._inbox: deque[Event] = deque()
        self._stream_pending: deque[str] = deque()
        self._dirty: set[str] = set(ALL_PANES)
        self._shown_suggestion: str | None = None
        self._git_lock = threading.Lock()
        self._watched: set[str] = set()
        self.flushes = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        theme = self.current_theme
        defaults = {}
        for name, fallback in CHART_VARIABLES.items():
            defaults[name] = getattr(theme, fallback, None) or theme.primary
        return defaults

    def on_mount(self) -> None:
        try:
            self.theme = self._initial_theme
        except Exception:  # unknown theme name in the config: keep going with ours
            self.theme = DEFAULT_THEME
            self.notify(f"unknown theme {self._initial_theme!r}; using {DEFAULT_THEME}", severity="warning")
        self._saved_theme = self.theme
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        if self.session is not None:
            self._connect()
        elif self._session_factory is not None:
            # after the first frame: building it in parallel would compete with that frame for the CPU
            self.call_after_refresh(self._open_session, self._session_factory)
        self.set_interval(FLUSH_INTERVAL_S, self.flush)
        if os.environ.get(DIAG_ENV):
            self.call_after_refresh(self._write_diagnostics, Path(os.environ[DIAG_ENV]))

    def _connect(self) -> None:
        assert self.session is not None
        self.session.subscribe(self._on_event)
        self._ingest_missed()
        self._load_script()
        if self.session.state.mode == "auto":
            self._start_agent()  # the agent re-attaches to its own live runs
        else:
            self._attach_live_runs()
        self._stop_watch = self.session.workspace.watch(self._on_workspace_change)

    @work(thread=True, group="open", exit_on_error=False)
    def _open_session(self, factory: "Callable[[], Session]") -> None:
        """Build the session after the first frame (git init, provider, re-attach take a while)."""
        try:
            session = factory()
        except BaseException as exc:  # shown by run_app once the terminal is restored
            self.startup_error = exc
            # exit once the first frame is complete: exiting mid-mount trips Textual's tabs
            self.call_from_thread(self.call_after_refresh, self.exit, 1)
            return
        self.call_from_thread(self._session_opened, session)

    def _session_opened(self, session: "Session") -> None:
        self.session = session
        self.state = SessionState()
        self._dirty |= ALL_PANES
        self._connect()

    def on_unmount(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch()
        if self.session is not None:
            self.session.unsubscribe(self._on_event)
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

    def _ingest_missed(self) -> None:
        """Events appended between the state copy and subscribing are in the session's state; catch up."""
        assert self.session is not None
        seen = self.state.last_seq
        if self.session.state.last_seq > seen:
            self.state = copy.deepcopy(self.session.state)
            self._dirty |= ALL_PANES

    def _attach_live_runs(self) -> None:
        assert self.session is not None
        try:
            live = self.session.live_runs()
        except SpeedcopilotError as exc:
            self.notify(str(exc), severity="error")
            return
        for run_id in live:
            self._watch(run_id)

    # -- autonomous mode ------------------------------------------------------------------------------
    def _start_agent(self) -> None:
        """Drive the session with the autonomous agent (policy, budget and seed as saved in its log)."""
        from copilot.agent.budget import Budget
        from copilot.agent.loop import AutonomousAgent
        from copilot.agent.policies import DEFAULT_NODES, Policy, get_policy
        from copilot.agent.tree import AgentTree

        assert self.session is not None
        saved = AgentTree.from_events(self._session_events()).config or {}
        budget_fields = dict(saved.get("budget") or self.session.options.budget or {})
        budget_fields.setdefault("nodes", DEFAULT_NODES)
        budget = Budget.from_dict(budget_fields)
        policy = Policy.from_dict(saved["policy"]) if saved.get("policy") else get_policy("tree", budget.nodes)
        self.agent = AutonomousAgent(self.session, policy, budget, int(saved.get("seed", 0) or 0),
                                     close_on_finish=False)
        self.notify(f"autonomous mode: policy {policy.name}, {budget_fields['nodes']} nodes · "
                    "P pause/resume · T take over")
        self.run_agent()

    def _session_events(self) -> list[Event]:
        from copilot.core.session.events import EVENTS_FILE, read_events

        assert self.session is not None
        return read_events(self.session.dir / EVENTS_FILE).events

    @work(exclusive=True, group="agent", exit_on_error=False)
    async def run_agent(self) -> Any:
        summary = await self.agent.run()
        detail = f" ({summary.detail})" if getattr(summary, "detail", None) else ""
        self.notify(f"agent stopped: {summary.stop_reason}{detail}", timeout=10)
        return summary

    def _agent_running(self) -> bool:
        return self.agent is not None and bool(getattr(self.agent, "running", False))

    def action_agent_pause(self) -> None:
        if not self._agent_running():
            return
        if self.agent.paused:
            self.agent.resume()
            self.notify("agent resumed")
        else:
            self.agent.pause()
            self.notify("agent pauses before its next suggestion or run")

    def action_take_over(self) -> None:
        if not self._agent_running():
            return
        self.agent.take_over()
        self.notify("you have the wheel: the session is in co-pilot mode now")

    # -- event intake (any thread) --------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        self._inbox.append(event)

    def ingest(self, event: Event) -> None:
        """Feed one event (replay driver or tests); it is applied at the next flush."""
        self._inbox.append(event)

    def _on_delta(self, text: str) -> None:
        self._stream_pending.append(text)

    # -- the one flush ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Apply queued events, then redraw dirty panes. Runs every FLUSH_INTERVAL_S and on demand."""
        self.flushes += 1
        while self._inbox:
            event = self._inbox.popleft()
            if event.seq and event.seq <= self.state.last_seq:
                continue  # already in the copied state
            self.state.apply(event)
            self._dirty |= _DIRTY_BY_EVENT.get(event.type, set())
            if event.type in ("commit_created", "undo", "branch_switched"):
                self._load_script()
            if event.type == "run_finished":
                self._report_run_finished(event)
        if self._stream_pending:
            chunk = "".join(self._stream_pending)
            self._stream_pending.clear()
            key = self._requested_id() or ""
            self.stream[key] = self.stream.get(key, "") + chunk
            self._dirty.add("suggestion")
        screen = self._main()
        if screen is None:
            return
        dirty, self._dirty = self._dirty, set()
        if "header" in dirty:
            if self.session is None and self._session_factory is not None:
                line = Text(" speedcopilot · opening the session…", style="bold")
            else:
                line = status_text(self.state, len(self.state.live_runs), screen.size.width)
            screen.query_one("#status-line", Static).update(line)
            screen.set_boxed_titles()
        if "suggestion" in dirty:
            self._render_suggestion(screen)
            self.refresh_bindings()
        if "script" in dirty:
            self._render_script(screen)
        if "runs" in dirty:
            self._render_runs(screen)
        if "chart" in dirty:
            self._render_chart(screen)
        if "history" in dirty:
            screen.query_one(HistoryTree).sync(self.state)
        self._render_log(screen)

    def _main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen if screen.is_mounted and screen.query("#status-line") else None
        return None

    def mark_dirty(self, *panes: str) -> None:
        """Redraw these panes at the next flush."""
        self._dirty.update(panes)

    def invalidate_all(self) -> None:
        """Redraw everything (after a layout change or a theme switch)."""
        self._dirty |= ALL_PANES
        self._shown_suggestion = None  # the cards were recomposed away
        screen = self._main()
        if screen is not None:
            tail = screen.query(LogTail)
            if tail:
                tail.first().run_id = "\0"  # force a refill
        self.flush()

    # -- rendering helpers -------------------------------------------------------------------------
    def displayed_suggestion(self) -> SuggestionView | None:
        if not self.state.suggestions:
            return None
        return self.state.current_suggestion or next(reversed(self.state.suggestions.values()))

    def _requested_id(self) -> str | None:
        view = self.state.current_suggestion
        return view.id if view is not None and view.status == "requested" else None

    def _render_suggestion(self, screen: MainScreen) -> None:
        view = self.displayed_suggestion()
        requesting = self._llm_busy()
        stream = self.stream.get(view.id, "") if view else ""
        if view is not None and view.status == "requested" and not stream:
            stream = self.stream.get("", "")
        screen.query_one("#suggestion-title", Static).update(
            suggestion_title(view, requesting and view is not None and view.status == "requested")
        )
        screen.query_one("#suggestion-body", Static).update(suggestion_body(view, stream))
        hunks_box = screen.query_one("#hunks")
        key_hint = screen.query_one("#suggestion-keys", Static)
        if view is None or not view.hunks:
            hunks_box.remove_children()
            self._shown_suggestion = None
            key_hint.update("s: ask for a suggestion" if not requesting else "waiting for the model…")
            return
        cards = list(hunks_box.query(HunkCard))
        same = self._shown_suggestion == view.id
        if not same:
            hunks_box.remove_children()
            now = time.monotonic()
            new_cards = []
            for hunk in view.hunks:
                key = (view.id, hunk.index)
                self.shown_at.setdefault(key, now)
                new_cards.append(HunkCard(hunk, len(view.hunks), self.staged.get(key), self.previews.get(key)))
            hunks_box.mount_all(new_cards)
            self._shown_suggestion = view.id
            self.selected_hunk = 0
            if view.status == "received":
                self._load_previews(view)
                if new_cards and screen.pane_visible("suggestion"):
                    self.call_after_refresh(self._focus_hunk, 0, True)
        else:
            for card, hunk in zip(cards, view.hunks):
                key = (view.id, hunk.index)
                card.update_card(hunk, self.staged.get(key), self.previews.get(key))
        if view.status == "received":
            staged = sum(1 for h in view.hunks if (view.id, h.index) in self.staged)
            key_hint.update(f"{staged}/{len(view.hunks)} decided · j/k move · A/X all · c or enter: apply")
        else:
            key_hint.update("s: ask for the next suggestion")

    def _render_script(self, screen: MainScreen) -> None:
        area = screen.query_one("#script-text", TextArea)
        if area.text != self.script_text:
            area.load_text(self.script_text)
        screen.query_one("#script-diff", DiffView).set_lines(self.diff_text.splitlines())
        area.display = not self.show_diff
        screen.query_one("#script-diff-scroll").display = self.show_diff
        head = self.state.head[:7] if self.state.head else "?"
        what = "diff against the starting record" if self.show_diff else "script"
        screen.query_one("#script-title", Static).update(f"{what} at {head} · d: toggle diff · E: $EDITOR")

    def _render_runs(self, screen: MainScreen) -> None:
        screen.query_one(RunTable).sync(list(self.state.runs.values()), self.state.record_time_s)

    def selected_run_id(self) -> str | None:
        screen = self._main()
        if screen is None:
            return None
        table = screen.query(RunTable)
        return table.first().selected_run_id if table else None

    def chart_runs(self) -> list[RunView]:
        ids = list(self.pinned_runs)
        selected = self.selected_run_id()
        if selected and selected not in ids:
            ids.append(selected)
        for run in self.state.live_runs:
            if run.run_id not in ids:
                ids.append(run.run_id)
        return [self.state.runs[i] for i in ids if i in self.state.runs]

    def reference_curve(self) -> list[MetricPoint]:
        if self._reference is None:
            self._reference = []
            if self.session is not None:
                try:
                    self._reference = list(self.session.track.reference_curve(self.state.record))
                except Exception as exc:  # a track without a curve must not break the chart
                    self.log.warning(f"no reference curve: {exc}")
        return self._reference

    def _render_chart(self, screen: MainScreen) -> None:
        screen.query_one(LossChart).show(self.chart_runs(), self.reference_curve(), self.state.target_val_loss)

    def _render_log(self, screen: MainScreen) -> None:
        tails = screen.query(LogTail)
        if not tails:
            return
        tail = tails.first()
        run_id = self.selected_run_id()
        if tail.run_id != run_id:
            if run_id and not self.logs.has(run_id) and self.session is not None:
                self.logs.seed(run_id, read_tail(self.session.dir / "runs" / run_id / "output.log"))
            self.logs.take_pending(None)
            tail.show_run(run_id, self.logs.lines(run_id) if run_id else [])
        else:
            tail.write_batch(self.logs.take_pending(run_id))

    def _report_run_finished(self, event: Event) -> None:
        outcome = event.get("outcome", "finished")
        run_id = event.get("run_id")
        if outcome == "reached_target" or event.get("reached_target"):
            ttt = event.get("time_to_target_ms")
            when = f" in {ttt / 1000:.1f}s" if isinstance(ttt, (int, float)) else ""
            self.notify(f"run {run_id} reached the target{when}", title="run finished")
        elif outcome in ("crashed", "diverged", "hung"):
            tail = event.get("error_tail") or ""
            code = event.get("exit_code")
            body = f"exit code {code}\n\n{tail}" if tail else f"exit code {code}"
            self.push_screen(MessageModal(f"run {run_id} {outcome}", body))
        else:
            self.notify(f"run {run_id}: {outcome}", title="run finished")

    # -- git reads (thread workers) ---------------------------------------------------------------
    @work(thread=True, exclusive=True, group="script", exit_on_error=False)
    def _load_script(self) -> None:
        if self.session is None:
            return
        with self._git_lock:
            text = self.session.script_text()
            diff = self.session.diff_against_start()
        self.call_from_thread(self._script_loaded, text, diff)

    def _script_loaded(self, text: str, diff: str) -> None:
        self.script_text, self.diff_text = text, diff
        self._dirty.add("script")

    @work(thread=True, exclusive=True, group="previews", exit_on_error=False)
    def _load_previews(self, view: SuggestionView) -> None:
        if self.session is None:
            return
        previews = {}
        for hunk in view.hunks:
            try:
                with self._git_lock:
                    previews[(view.id, hunk.index)] = self.session.preview_hunk(view.id, hunk.index)
            except SpeedcopilotError:
                continue  # the card keeps its own search→replace diff
        self.call_from_thread(self._previews_loaded, previews)

    def _previews_loaded(self, previews: dict[tuple[str, int], list[str]]) -> None:
        self.previews.update(previews)
        self._dirty.add("suggestion")

    # -- guards -------------------------------------------------------------------------------------
    def _need_session(self) -> "Session | None":
        if self.session is None:
            opening = self._session_factory is not None and self.startup_error is None
            self.notify("the session is still opening…" if opening else "read-only view: no live session",
                        severity="warning")
        return self.session

    def _llm_busy(self) -> bool:
        return any(w.group == "llm" and w.is_running for w in self.workers)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("agent_pause", "take_over"):
            return self._agent_running()
        if self._agent_running() and action in ("suggest", "run", "apply", "undo", "checkout", "external_edit"):
            return False  # the agent has the wheel: take over first (T)
        hunk_actions = {"accept", "reject", "edit_hunk", "feedback", "accept_all", "reject_all", "apply",
                        "next_hunk", "prev_hunk", "goto_hunk"}
        if action in hunk_actions:
            view = self.state.current_suggestion
            return view is not None and view.status == "received" and bool(view.hunks)
        return True

    # -- suggestion actions -------------------------------------------------------------------------
    def action_suggest(self) -> None:
        if self._need_session() is None:
            return
        if self._llm_busy():
            self.notify("a suggestion is already being generated", severity="warning")
            return

        def chosen(instruction: str | None) -> None:
            if instruction is None:
                return
            self.request_suggestion(instruction or None)

        self.push_screen(TextPrompt("Ask for a suggestion", "optional instruction, e.g. 'try a higher LR'"), chosen)

    @work(exclusive=True, group="llm", exit_on_error=False)
    async def request_suggestion(self, instruction: str | None = None) -> SuggestionView:
        assert self.session is not None
        self.stream[""] = ""
        self._dirty.add("suggestion")
        return await self.session.request_suggestion(instruction, on_delta=self._on_delta)

    def _current_hunk(self) -> tuple[SuggestionView, int] | None:
        view = self.state.current_suggestion
        if view is None or view.status != "received" or not view.hunks:
            return None
        index = min(max(self.selected_hunk, 0), len(view.hunks) - 1)
        return view, view.hunks[index].index

    def _stage(self, view: SuggestionView, index: int, action: str, **extra: Any) -> None:
        key = (view.id, index)
        hunk = next(h for h in view.hunks if h.index == index)
        if hunk.decision is not None:
            self.notify(f"hunk {index + 1} is already decided ({hunk.decision})", severity="warning")
            return
        now = time.monotonic()
        # Time on this hunk: from when it was shown, or from the previous decision on this suggestion if that
        # came later (reviewing hunk by hunk, the next one gets the human's attention only then).
        start = max(self.shown_at.get(key, now), self._last_decision_at.get(view.id, 0.0))
        self.staged[key] = StagedDecision(action, decision_time_s=round(now - start, 3), **extra)
        self._last_decision_at[view.id] = now
        self._dirty.add("suggestion")
        self.flush()

    def action_accept(self) -> None:
        if (cur := self._current_hunk()) is not None:
            self._stage(*cur, "accept")
            self.action_next_hunk()

    def action_reject(self) -> None:
        if (cur := self._current_hunk()) is not None:
            self._stage(*cur, "reject")
            self.action_next_hunk()

    def action_feedback(self) -> None:
        if (cur := self._current_hunk()) is None:
            return
        view, index = cur

        def done(text: str | None) -> None:
            if text:
                self._stage(view, index, "reject", feedback=text)
                self.action_next_hunk()

        self.push_screen(TextPrompt(f"Why reject hunk {index + 1}? (sent to the model)", allow_empty=False), done)

    def action_edit_hunk(self) -> None:
        if (cur := self._current_hunk()) is None:
            return
        view, index = cur
        hunk = next(h for h in view.hunks if h.index == index)
        staged = self.staged.get((view.id, index))
        start = staged.edited_replace if staged and staged.edited_replace is not None else hunk.replace

        def done(text: str | None) -> None:
            if text is None:
                return
            if text == hunk.replace:
                self._stage(view, index, "accept")
            else:
                self._stage(view, index, "edit", edited_replace=text)
            self.action_next_hunk()

        self.push_screen(EditHunkModal(f"Edit hunk {index + 1} · {hunk.path}", hunk.search, start), done)

    def _stage_all(self, action: str) -> None:
        view = self.state.current_suggestion
        if view is None:
            return
        for hunk in view.undecided:
            if (view.id, hunk.index) not in self.staged:
                self._stage(view, hunk.index, action)

    def action_accept_all(self) -> None:
        self._stage_all("accept")

    def action_reject_all(self) -> None:
        self._stage_all("reject")

    def _focus_hunk(self, position: int, arriving: bool = False) -> None:
        screen = self._main()
        if screen is None:
            return
        cards = list(screen.query("#hunks HunkCard").results(HunkCard))
        if not cards:
            return
        position = max(0, min(position, len(cards) - 1))
        self.selected_hunk = position
        if arriving and not self._focus_is_free(screen):
            return  # a suggestion that lands must not pull focus out of the pane the human works in
        if screen.pane_visible("suggestion"):
            cards[position].focus()
        cards[position].scroll_visible()

    def _focus_is_free(self, screen: MainScreen) -> bool:
        from textual.widgets import Tabs

        focused = screen.focused
        if focused is None or isinstance(focused, (Tabs, HunkCard)):
            return True
        return any(node.id == "suggestion" for node in focused.ancestors)

    def action_next_hunk(self) -> None:
        self._focus_hunk(self.selected_hunk + 1)

    def action_prev_hunk(self) -> None:
        self._focus_hunk(self.selected_hunk - 1)

    @on(HunkCard.Selected)
    def _hunk_selected(self, message: HunkCard.Selected) -> None:
        view = self.state.current_suggestion
        if view is None:
            return
        for position, hunk in enumerate(view.hunks):
            if hunk.index == message.index:
                self.selected_hunk = position

    def action_apply(self) -> None:
        if self._need_session() is None:
            return
        view = self.state.current_suggestion
        if view is None or view.status != "received":
            self.notify("nothing to apply: ask for a suggestion first (s)", severity="warning")
            return
        from copilot.core.session import HunkDecision

        decisions = []
        skipped = 0
        for hunk in view.undecided:
            staged = self.staged.get((view.id, hunk.index))
            if staged is None:
                skipped += 1
                staged = StagedDecision("reject", decision_time_s=0.0)
            decisions.append(
                HunkDecision(hunk.index, staged.action, edited_replace=staged.edited_replace,
                             feedback=staged.feedback, decision_time_s=staged.decision_time_s)
            )
        if skipped:
            self.notify(f"{skipped} undecided hunk(s) rejected", severity="information")
        self.decide(view.id, decisions)

    @work(thread=True, group="git", exit_on_error=False)
    def decide(self, suggestion_id: str, decisions: list) -> Any:
        assert self.session is not None
        with self._git_lock:
            return self.session.decide(suggestion_id, decisions)

    def action_goto_hunk(self) -> None:
        if (cur := self._current_hunk()) is None:
            return
        view, index = cur
        hunk = next(h for h in view.hunks if h.index == index)
        found = self.script_text.find(hunk.search) if hunk.search else -1
        if found < 0:
            self.notify("the hunk's lines are not in the current script (it may not apply)", severity="warning")
            return
        first = self.script_text.count("\n", 0, found)
        last = first + max(0, hunk.search.count("\n") - (1 if hunk.search.endswith("\n") else 0))
        self.show_diff = False
        self._dirty.add("script")
        self.flush()
        screen = self._main()
        if screen is None:
            return
        screen.show_pane("script")
        area = screen.query_one("#script-text", TextArea)
        end_col = len(self.script_text.splitlines()[last]) if self.script_text.splitlines() else 0
        from textual.widgets.text_area import Selection

        area.selection = Selection((first, 0), (last, end_col))
        area.scroll_cursor_visible(center=True)

    # -- script actions -------------------------------------------------------------------------------
    def action_toggle_diff(self) -> None:
        self.show_diff = not self.show_diff
        self._dirty.add("script")
        self.flush()

    def action_external_edit(self) -> None:
        session = self._need_session()
        if session is None:
            return
        path = session.workspace.path / session.track.script_name
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        try:
            with self.suspend():
                subprocess.call([*shlex.split(editor), str(path)])
        except Exception as exc:  # SuspendNotSupported (headless), editor missing, ...
            self.notify(f"could not open {editor}: {exc}. Edit {path} elsewhere, then press W.", severity="error")
            return
        self.action_check_edits()

    def action_check_edits(self) -> None:
        if self._need_session() is not None:
            self.check_external_edit()

    def _on_workspace_change(self, path: Path) -> None:
        """Watchdog thread: a file in the working copy changed (another editor, a script)."""
        try:
            self.call_from_thread(self._schedule_edit_check)
        except RuntimeError:  # the app is shutting down
            pass

    def _schedule_edit_check(self) -> None:
        # editors write in bursts; look once things settle. Our own commits hold the git lock, so the
        # check never sees them half-written, and a clean tree prompts nothing.
        if self._edit_timer is not None:
            self._edit_timer.stop()
        self._edit_timer = self.set_timer(0.8, self._auto_check_edits)

    def _auto_check_edits(self) -> None:
        if self.session is None or self._agent_running() or self._edit_prompt_open or self.closed:
            return
        self.check_external_edit(quiet=True)

    @work(thread=True, group="git", exit_on_error=False)
    def check_external_edit(self, quiet: bool = False) -> None:
        assert self.session is not None
        with self._git_lock:
            if not self.session.log.is_open:
                return
            diff = self.session.check_external_edit()
        self.call_from_thread(self._external_edit_checked, diff, quiet)

    def _external_edit_checked(self, diff: str | None, quiet: bool = False) -> None:
        if not diff:
            if not quiet:
                self.notify("the working copy has no uncommitted changes")
            return
        if self._edit_prompt_open:
            return

        def answer(yes: bool | None) -> None:
            self._edit_prompt_open = False
            if yes:
                self.commit_external_edit()

        self._edit_prompt_open = True
        self.push_screen(ConfirmModal("Commit your edit of the working copy?", diff.splitlines(), "Commit"), answer)

    @work(thread=True, group="git", exit_on_error=False)
    def commit_external_edit(self) -> Any:
        assert self.session is not None
        with self._git_lock:
            return self.session.commit_external_edit("human edit")

    # -- runs -----------------------------------------------------------------------------------------
    def action_run(self) -> None:
        if self._need_session() is not None:
            self.start_run()

    @work(thread=True, group="git", exit_on_error=False)
    def start_run(self) -> RunView:
        assert self.session is not None
        with self._git_lock:
            run = self.session.start_run()
        self.call_from_thread(self._watch, run.run_id)
        return run

    def _watch(self, run_id: str) -> None:
        if run_id in self._watched or self.session is None:
            return
        self._watched.add(run_id)
        session = self.session

        async def watch() -> Any:
            return await session.watch_run(run_id, on_line=lambda line: self.logs.append(run_id, line))

        self.run_worker(watch, name=f"watch {run_id}", group="runs", exit_on_error=False)
        self._dirty |= {"runs", "chart"}

    def action_cancel_run(self) -> None:
        session = self._need_session()
        if session is None:
            return
        run_id = self.selected_run_id()
        live = [r.run_id for r in self.state.live_runs]
        if run_id not in live:
            run_id = live[-1] if live else None
        if run_id is None:
            self.notify("no run is training", severity="warning")
            return
        try:
            session.cancel_run(run_id)
        except SpeedcopilotError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"cancelling {run_id}")

    def action_pin_run(self) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            return
        if run_id in self.pinned_runs:
            self.pinned_runs.remove(run_id)
        else:
            self.pinned_runs.append(run_id)
        self._dirty.add("chart")

    def on_data_table_row_highlighted(self) -> None:
        self._dirty.add("chart")

    # -- history --------------------------------------------------------------------------------------
    def action_undo(self) -> None:
        if self._need_session() is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.undo()

        head = self.state.head[:7] if self.state.head else "HEAD"
        self.push_screen(ConfirmModal(f"Undo {head}? (adds a revert commit; nothing is lost)"), answer)

    @work(thread=True, group="git", exit_on_error=False)
    def undo(self) -> Any:
        assert self.session is not None
        with self._git_lock:
            return self.session.undo()

    def action_checkout(self) -> None:
        if self._need_session() is None:
            return
        screen = self._main()
        sha = screen.query_one(HistoryTree).selected_sha if screen else None
        if not sha:
            self.notify("select a commit in the history pane first (5)", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.checkout(sha)

        self.push_screen(ConfirmModal(f"Check out {sha[:7]} on a new branch?"), answer)

    @on(HistoryTree.NodeSelected)
    def _history_selected(self, message: HistoryTree.NodeSelected) -> None:
        message.stop()
        if message.node.data and message.node.data != self.state.head:
            self.action_checkout()

    @work(thread=True, group="git", exit_on_error=False)
    def checkout(self, sha: str) -> str:
        assert self.session is not None
        with self._git_lock:
            return self.session.checkout(sha)

    # -- session ---------------------------------------------------------------------------------------
    def action_note(self) -> None:
        session = self._need_session()
        if session is None:
            return

        def done(text: str | None) -> None:
            if text:
                session.note(text)

        self.push_screen(TextPrompt("Note for the session log", allow_empty=False), done)

    def action_cycle_theme(self) -> None:
        names = [t.name for t in self._themes]
        if not names:
            return
        position = names.index(self.theme) + 1 if self.theme in names else 0
        self.theme = names[position % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def _on_theme_changed(self, theme: Any) -> None:
        if theme.name == self._saved_theme:
            return  # the initial theme (or a repeat) is not a change to save
        self._saved_theme = theme.name
        if self.on_theme_saved is not None:
            try:
                self.on_theme_saved(theme.name)
            except Exception as exc:  # saving config must never take the app down
                self.notify(f"could not save the theme choice: {exc}", severity="warning")
        self._dirty.add("chart")

    def action_pane(self, name: str) -> None:
        screen = self._main()
        if screen is not None:
            screen.show_pane(name)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_quit_session(self) -> None:
        live = [r.run_id for r in self.state.live_runs]
        if not live:
            self.call_later(self._close_and_exit, False)
            return

        def answer(choice: str | None) -> None:
            if choice in ("leave", "stop"):
                self.quit_choice = choice
                self.call_later(self._close_and_exit, choice == "stop")

        self.push_screen(QuitModal(live), answer)

    async def _close_and_exit(self, stop_runs: bool) -> None:
        if self._agent_running():
            self.agent.stop("app closed")
        # a request in flight logs its own cancellation: let it, before the log closes
        pending = [w for w in self.workers if w.group == "llm" and w.is_running]
        for worker in pending:
            worker.cancel()
        deadline = time.monotonic() + 5.0
        while any(w.is_running for w in pending) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.session is not None and not self.closed:
            try:
                self.session.close(reason="user", stop_runs=stop_runs)
            except SpeedcopilotError as exc:
                self.notify(str(exc), severity="error")
                return
        self.closed = True
        self.exit(0)

    # -- one place for worker outcomes -------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self.flush()  # the worker's events are queued: show them with its outcome
        if event.state == WorkerState.SUCCESS and worker.group == "llm":
            self._dirty.add("suggestion")
            self.stream.pop("", None)
        if event.state == WorkerState.SUCCESS and worker.name in ("decide", "commit_external_edit", "undo"):
            commit = worker.result
            self.notify(f"committed {commit.sha[:7]} ({commit.provenance})" if commit else "nothing accepted",
                        timeout=4)
        if event.state == WorkerState.SUCCESS and worker.name == "checkout":
            self.notify(f"now on branch {worker.result}", timeout=4)
        if event.state != WorkerState.ERROR:
            return
        self._dirty.add("suggestion")
        error = worker.error
        self.show_error(error, context=worker.name or worker.group)

    def show_error(self, error: BaseException | None, context: str = "") -> None:
        if isinstance(error, ProviderError):
            self.notify(f"{error}\nTip: start with --provider oracle to work offline.", title="model unavailable",
                        severity="error", timeout=12)
        elif isinstance(error, EditApplyError):
            self.notify(str(error), title="hunk does not apply", severity="error", timeout=12)
        elif isinstance(error, WorkspaceError) and self.session is not None and "uncommitted" in str(error).lower():
            self.notify(str(error), title="working copy has edits", severity="warning", timeout=10)
            self.check_external_edit()  # offer to commit them, so the next try works
        elif isinstance(error, SpeedcopilotError):
            self.notify(str(error), title=context or "error", severity="error", timeout=10)
        else:
            self.notify(f"{type(error).__name__}: {error}", title=f"unexpected error in {context}",
                        severity="error", timeout=12)


def run_app(
    session: "Session | Callable[[], Session]",
    theme: str | None = None,
    on_theme_saved: ThemeSaved | None = None,
) -> int:
    """Run the co-pilot until the human quits; the session is always closed afterwards.

    `session` may be a Session or a zero-argument callable that builds one: then the first frame is drawn
    while the session is created in a worker, and an error from the callable is re-raised here (after the
    terminal is restored) so the CLI prints it like any other.
    """
    app = CopilotApp(session, theme=theme, on_theme_saved=on_theme_saved)
    try:
        result = app.run()
    finally:
        if app.session is not None and not app.closed:
            try:
                app.session.close(reason="ui-exit", stop_runs=False)
            except SpeedcopilotError:
                pass
    if app.startup_error is not None:
        raise app.startup_error
    return int(result or 0)
