"""Working on the session: suggestions, applying decisions, runs (with the guard's say before them), cancel,
undo, branches, edits in another editor, notes. Every operation awaits the session; none blocks the loop."""

from __future__ import annotations

import os
import shlex
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

from textual import on

from copilot.core.errors import SpeedcopilotError
from copilot.ui.screens.modals import ConfirmModal, GuardModal, TextPrompt
from copilot.ui.view import Preview
from copilot.ui.widgets.history_tree import HistoryTree

EDIT_SETTLE_S = 0.8  # editors write in bursts; look at the working copy once things settle


class WorkActions:
    # -- suggestions -----------------------------------------------------------------------------
    def action_suggest(self: Any) -> None:
        if self.need_session() is None:
            return
        if self.ui.requesting:
            self.notify("a suggestion is already being generated", severity="warning")
            return

        def chosen(instruction: str | None) -> None:
            if instruction is not None:
                self.start(partial(self._request_suggestion, instruction or None), "request_suggestion", group="llm")

        self.push_screen(TextPrompt("Ask for a suggestion", "optional instruction, e.g. 'try a higher LR'"), chosen)

    async def _request_suggestion(self: Any, instruction: str | None) -> None:
        self.ui.requesting = True
        self.ui.stream[""] = ""
        self.mark_dirty("suggestion")
        try:
            await self.session.request_suggestion(instruction, on_delta=self.ingest_delta)
        finally:
            self.ui.requesting = False
            self.ui.stream.pop("", None)
            self.mark_dirty("suggestion")
            self.refresh_bindings()

    async def load_previews(self: Any, suggestion_id: str) -> None:
        view = self.state.suggestions.get(suggestion_id)
        if view is None or self.session is None:
            return
        for hunk in view.hunks:
            try:
                lines, first = await self.session.preview_hunk(suggestion_id, hunk.index)
            except SpeedcopilotError:
                continue  # the card keeps its own search→replace diff
            self.ui.previews[(suggestion_id, hunk.index)] = Preview(lines, first)
        self.mark_dirty("suggestion")

    def action_apply(self: Any) -> None:
        if self.need_session() is None:
            return
        view = self.state.current_suggestion
        if view is None or view.status != "received":
            self.notify("nothing to apply: ask for a suggestion first (s)", severity="warning")
            return
        decisions, skipped = self.staged_decisions(view)
        if skipped:
            self.notify(f"{skipped} undecided hunk(s) rejected", severity="information")
        self.start(partial(self._decide, view.id, decisions), "decide", group="git")

    async def _decide(self: Any, suggestion_id: str, decisions: list) -> None:
        commit = await self.session.decide(suggestion_id, decisions)
        self.notify(f"committed {commit.sha[:7]} ({commit.provenance})" if commit else "nothing accepted", timeout=4)

    # -- runs ------------------------------------------------------------------------------------
    def action_run(self: Any) -> None:
        if self.need_session() is not None:
            self.start(self._start_run, "start_run", group="git")

    async def _start_run(self: Any, override: bool = False) -> None:
        from copilot.core.session import GuardBlocked

        try:
            run = await self.session.start_run(override_guard=override, started_by="app",
                                               stop_at_target=bool(getattr(self, "stop_at_target", False)))
        except GuardBlocked as blocked:
            commit, report = blocked.commit, blocked.report
            findings = [dict(f.to_dict() if hasattr(f, "to_dict") else vars(f)) for f in report.findings]

            def answer(choice: str | None) -> None:
                if choice == "run":
                    self.start(partial(self._start_run, override=True), "start_run", group="git")
                else:
                    self.start(partial(self.session.log_guard_choice, commit, "back", report), "guard")
                    self.notify("not run: the guard's findings stay in the log", timeout=6)

            self.push_screen(GuardModal(commit, findings), answer)
            return
        self.ui.selected_run = run.run_id
        self.mark_dirty("runs", "chart")

    # -- the same-machine baseline -----------------------------------------------------------------
    def offer_baseline(self: Any) -> None:
        """A live co-pilot session on the micro track without a same-machine baseline: say what its numbers
        are compared with and offer to measure (never started without the human's yes)."""
        session = self.session
        if session is None or self.driver.name != "copilot" or session.state.track != "micro":
            return
        if session.state.baseline_times()[2]:
            return
        reason = (session.state.baseline or {}).get("reason") or "no same-machine baseline recorded"
        self.notify(f"'vs record' and FSR use the catalogue's times, measured on another machine ({reason}). "
                    f"Press B to time records {session.state.record} and the next one here "
                    f"(about {_baseline_minutes(session):.0f} min).", title="catalogue time, other machine",
                    severity="warning", timeout=20)

    def action_measure_baseline(self: Any) -> None:
        session = self.need_session()
        if session is None:
            return
        if getattr(self, "_measuring_baseline", False):
            self.notify("the baseline is being measured already", severity="warning")
            return
        if self.live_run_ids():
            self.notify("a run is training: time the baseline when the machine is idle (runs would slow each other)",
                        severity="warning")
            return
        from copilot.core.research import baselines

        following = baselines.next_record_of(session.track, session.state.record)
        if following is None:
            self.notify("the last record of the track has no next record to time", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.start(self._measure_baseline, "baseline", group="baseline")

        self.push_screen(ConfirmModal(
            f"Time records {session.state.record} and {following} here, {baselines.DEFAULT_SEEDS} seeds each, "
            "stopping at the "
            f"target (about {_baseline_minutes(session):.0f} min)? Don't train meanwhile: runs slow each other."),
            answer)

    async def _measure_baseline(self: Any) -> None:
        from copilot import __version__
        from copilot.core.research import baselines as b

        session = self.session
        self._measuring_baseline = True
        try:
            store = b.BaselineStore()
            record = session.state.record

            def progress(number: int, seed: int, run: Any) -> None:
                done = "did not reach the target" if run.time_s is None else f"{run.time_s:.1f}s to target"
                self.notify(f"baseline: record {number}, seed {seed}: {done}", timeout=6)

            measurements = await b.measure(
                session.track, record, seeds=b.DEFAULT_SEEDS, runner=session.runner,
                runner_url=session.options.runner_url,
                work_dir=store.path.parent / "baseline-runs" / b.new_measurement_id(), gpus=session.options.gpus,
                hang_timeout_s=session.options.hang_timeout_s, progress=progress, tool_version=__version__)
            store.add(measurements)
            following = b.next_record_of(session.track, record)
            choice = b.select_baseline(store, measurements[0].fingerprint, measurements[0].conditions, record,
                                       following, session.state.record_time_s, session.state.next_record_time_s)
            session.record_baseline(choice.to_fields())
            if choice.same_machine:
                self.notify(f"same-machine baseline: record {record} {choice.record_time_s:.1f}s, record {following} "
                            f"{choice.next_record_time_s:.1f}s; 'vs record' and FSR use it now", timeout=10)
            else:
                self.notify(f"the baseline cannot be used: {choice.reason}", severity="error", timeout=12)
        finally:
            self._measuring_baseline = False
            self.mark_dirty("runs", "chart", "header")

    def action_cancel_run(self: Any) -> None:
        if self.need_session() is None:
            return
        live = self.live_run_ids()
        run_id = self.ui.selected_run if self.ui.selected_run in live else (live[-1] if live else None)
        if run_id is None:
            self.notify("no run is training", severity="warning")
            return
        self.start(partial(self.session.cancel_run, run_id), "cancel_run")
        self.notify(f"cancelling {run_id}")

    def action_pin_run(self: Any) -> None:
        run_id = self.ui.selected_run
        if run_id is None:
            return
        if run_id in self.ui.pinned_runs:
            self.ui.pinned_runs.remove(run_id)
        else:
            self.ui.pinned_runs.append(run_id)
        self.mark_dirty("chart")

    # -- history ---------------------------------------------------------------------------------
    def action_undo(self: Any) -> None:
        if self.need_session() is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.start(self._undo, "undo", group="git")

        head = self.state.head[:7] if self.state.head else "HEAD"
        self.push_screen(ConfirmModal(f"Undo {head}? (adds a revert commit; nothing is lost)"), answer)

    async def _undo(self: Any) -> None:
        commit = await self.session.undo()
        self.notify(f"committed {commit.sha[:7]} ({commit.provenance})", timeout=4)

    def action_checkout(self: Any) -> None:
        if self.need_session() is None:
            return
        screen = self.main()
        sha = screen.query_one(HistoryTree).selected_sha if screen else None
        if not sha:
            self.notify("select a commit in the history pane first (5)", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.start(partial(self._checkout, sha), "checkout", group="git")

        self.push_screen(ConfirmModal(f"Check out {sha[:7]} on a new branch?"), answer)

    async def _checkout(self: Any, sha: str) -> None:
        branch = await self.session.checkout(sha)
        self.notify(f"now on branch {branch}", timeout=4)

    @on(HistoryTree.NodeSelected)
    def _history_selected(self: Any, message: HistoryTree.NodeSelected) -> None:
        message.stop()
        if message.node.data and message.node.data != self.state.head and self.check_action("checkout", ()):
            self.action_checkout()

    # -- edits made elsewhere ----------------------------------------------------------------------
    def action_external_edit(self: Any) -> None:
        session = self.need_session()
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

    def action_check_edits(self: Any) -> None:
        if self.need_session() is not None:
            self.start(partial(self._check_external_edit, quiet=False), "check_external_edit", group="git")

    def on_workspace_change(self: Any, path: Path) -> None:
        """Watchdog thread: a file in the working copy changed (another editor, a script)."""
        try:
            self.call_from_thread(self._schedule_edit_check)
        except RuntimeError:  # the app is shutting down
            pass

    def _schedule_edit_check(self: Any) -> None:
        if self._edit_timer is not None:
            self._edit_timer.stop()
        self._edit_timer = self.set_timer(EDIT_SETTLE_S, self._auto_check_edits)

    def _auto_check_edits(self: Any) -> None:
        if self.session is None or self.driver.name != "copilot" or self._edit_prompt_open or self.closed:
            return
        self.start(partial(self._check_external_edit, quiet=True), "check_external_edit", group="git")

    async def _check_external_edit(self: Any, quiet: bool) -> None:
        diff = await self.session.check_external_edit()
        if not diff:
            if not quiet:
                self.notify("the working copy has no uncommitted changes")
            return
        if self._edit_prompt_open:
            return

        def answer(yes: bool | None) -> None:
            self._edit_prompt_open = False
            if yes:
                self.start(self._commit_external_edit, "commit_external_edit", group="git")

        self._edit_prompt_open = True
        self.push_screen(ConfirmModal("Commit your edit of the working copy?", diff.splitlines(), "Commit"), answer)

    async def _commit_external_edit(self: Any) -> None:
        commit = await self.session.commit_external_edit("human edit")
        self.notify(f"committed {commit.sha[:7]} ({commit.provenance})", timeout=4)

    # -- notes -----------------------------------------------------------------------------------
    def action_note(self: Any) -> None:
        session = self.need_session()
        if session is None:
            return

        def done(text: str | None) -> None:
            if text:
                session.note(text)

        self.push_screen(TextPrompt("Note for the session log", allow_empty=False), done)


def _baseline_minutes(session: Any) -> float:
    """A rough duration of the default baseline: seeds × both records' catalogue times, plus start-up."""
    from copilot.core.research import baselines

    total = (session.state.record_time_s or 60.0) + (session.state.next_record_time_s or 60.0)
    return max(1.0, baselines.DEFAULT_SEEDS * (total + 20.0) / 60.0)
