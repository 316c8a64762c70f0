"""The co-pilot loop: propose → review → commit → run → observe, every step an event.

One Session owns the event log, the git workspace, the provider and the runner. The Textual app, the
autonomous agent and the headless CLI are drivers of this class; none of them keeps state of its own.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from copilot import __version__
from copilot.core import edits
from copilot.core.errors import (
    EditApplyError,
    EditParseError,
    ProviderError,
    RunError,
    SessionNotFoundError,
    SpeedcopilotError,
)
from copilot.core.session.events import EVENTS_FILE, Event, EventLog, read_events
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session.projection import CommitView, RunView, SessionState, SuggestionView
from copilot.core.tracks.base import Track
from copilot.core.session.workspace import Workspace

WORKSPACE_DIR = "workspace"
RUNS_DIR = "runs"
ATTEMPTS_IN_PROMPT = 5


@dataclass(frozen=True)
class HunkDecision:
    index: int
    action: str  # accept | reject | edit
    edited_replace: str | None = None
    feedback: str | None = None
    decision_time_s: float = 0.0

    def __post_init__(self) -> None:
        if self.action not in ("accept", "reject", "edit"):
            raise ValueError(f"unknown hunk decision {self.action!r}")
        if self.action == "edit" and self.edited_replace is None:
            raise ValueError("an edit decision needs the edited replacement text")


@dataclass(frozen=True)
class SessionOptions:
    """What a new session is about (recorded in session_started)."""

    mode: str = "copilot"  # copilot | auto
    hint_levels: tuple[int, ...] = ()
    participant: str | None = None
    study: dict[str, Any] | None = None
    gpus: int = 1
    edit_retries: int = 2
    hang_timeout_s: float | None = 300.0
    run_timeout_s: float | None = None
    budget: dict[str, Any] | None = None
    runner_url: str = "local"  # local | ssh://…; recorded so a resume re-attaches through the same runner
    edit_format: str = "search_replace"  # how the model is asked to write edits (edits.FORMATS)
    edit_limits: edits.EditLimits = field(default_factory=edits.EditLimits)


def new_session_id() -> str:
    """Sortable by creation time (UTC), unique across processes."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def host_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu.strip(" x86_64"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
        "python": sys.version.split()[0],
    }


class Session:
    def __init__(
        self,
        session_dir: Path,
        log: EventLog,
        state: SessionState,
        workspace: Workspace,
        track: Track,
        provider: Any,
        runner: Any,
        options: SessionOptions,
    ) -> None:
        self.dir = session_dir
        self.id = session_dir.name
        self.log = log
        self.state = state
        self.workspace = workspace
        self.track = track
        self.provider = provider
        self.runner = runner
        self.options = options
        self._handles: dict[str, Any] = {}
        self._specs: dict[str, Any] = {}
        self._seen_external_diff: str | None = None
        log.subscribe(state.apply)

    # -- creation / resume ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        sessions_root: Path,
        track: Track,
        record: int,
        provider: Any,
        runner: Any = None,
        options: SessionOptions | None = None,
    ) -> "Session":
        options = options or SessionOptions()
        info = track.record(record)
        next_record = _next_record_number(track, record)
        next_time = track.record(next_record).time_s if next_record is not None else None
        session_dir = sessions_root / new_session_id()
        files = track.record_files(record)
        workspace = Workspace.create(
            session_dir / WORKSPACE_DIR,
            files,
            message=f"{track.name} record {record}: {info.name}",
            trailers={"Provenance": "start", "Track": track.name, "Record": str(record)},
        )
        track.prepare_workdir(workspace.path)
        log = EventLog(session_dir)
        log.open()
        state = SessionState()
        session = cls(session_dir, log, state, workspace, track, provider, runner or _local_runner(), options)
        log.append(
            "session_started",
            session_id=session.id,
            mode=options.mode,
            track=track.name,
            record=record,
            record_name=info.name,
            target_val_loss=track.target_val_loss,
            record_time_s=info.time_s,
            next_record=next_record,
            next_record_time_s=next_time,
            provider=provider.name,
            model=provider.model,
            provider_label=provider.label,
            offline=bool(provider.offline),
            hint_levels=list(options.hint_levels),
            participant=options.participant,
            study=options.study,
            budget=options.budget,
            gpus=options.gpus,
            runner=getattr(session.runner, "name", "local"),
            runner_url=options.runner_url,
            tool_version=__version__,
            host=host_info(),
            workspace=str(workspace.path),
            script=track.script_name,
            start_commit=workspace.head_sha(),
            branch=workspace.branch(),
        )
        return session

    @classmethod
    def open(
        cls,
        sessions_root: Path,
        session_id: str,
        track: Track,
        provider: Any,
        runner: Any = None,
        options: SessionOptions | None = None,
    ) -> "Session":
        """Resume a session: rebuild state from its log, re-attach to runs still going."""
        session_dir = resolve_session_dir(sessions_root, session_id)
        log = EventLog(session_dir)
        existing = log.open()
        try:
            state = SessionState.from_events(existing.events)
            workspace = Workspace.open(session_dir / WORKSPACE_DIR)
        except Exception:
            log.close()
            raise
        started = next((e for e in existing.events if e.type == "session_started"), None)
        base = options or SessionOptions()
        if started is not None:
            base = SessionOptions(
                mode=state.mode,
                hint_levels=tuple(state.hint_levels),
                participant=state.participant,
                study=started.get("study"),
                gpus=int(started.get("gpus", base.gpus) or 1),
                edit_retries=base.edit_retries,
                hang_timeout_s=base.hang_timeout_s,
                run_timeout_s=base.run_timeout_s,
                budget=started.get("budget"),
                runner_url=started.get("runner_url", "local"),
                edit_format=base.edit_format,
                edit_limits=base.edit_limits,
            )
        session = cls(session_dir, log, state, workspace, track, provider, runner or _local_runner(), base)
        log.append(
            "session_resumed",
            provider=provider.name,
            model=provider.model,
            provider_label=provider.label,
            offline=bool(provider.offline),
            problems=existing.problems,
            head=workspace.head_sha(),
        )
        session._sync_head_with_git()
        session._reattach_runs()
        return session

    # -- subscriptions ----------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self.log.subscribe(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        self.log.unsubscribe(callback)

    # -- suggestions ------------------------------------------------------------------------
    async def request_suggestion(
        self,
        instruction: str | None = None,
        on_delta: Callable[[str], None] | None = None,
        attempts: list[Any] | None = None,
    ) -> SuggestionView:
        """Ask the provider for hunks. `attempts` replaces the default history (the last runs) in the prompt."""
        from copilot.core.llm import prompts, suggest

        suggestion_id = f"s{len(self.state.suggestions) + 1}"
        self.log.append("suggestion_requested", suggestion_id=suggestion_id, instruction=instruction,
                        edit_format=self.options.edit_format)
        files = self.workspace.tracked_files()
        request = suggest.EditRequest(files, self.track.script_name, edit_format=self.options.edit_format,
                                      root=self.workspace.path, limits=self.options.edit_limits,
                                      guard=self._guard_check())
        messages = prompts.build_messages(self._prompt_context(files, instruction, attempts))
        started = time.monotonic()
        try:
            result = await suggest.request_suggestion(
                self.provider,
                messages,
                request,
                max_retries=self.options.edit_retries,
                on_delta=on_delta,
                allow_truncated=self.state.mode != "auto",  # a human reviews a cut-off answer; a policy never
            )
        except (ProviderError, EditParseError, EditApplyError) as exc:
            usage = _usage_of(exc)
            self.log.append(
                "suggestion_failed",
                suggestion_id=suggestion_id,
                error=str(exc),
                error_kind=type(exc).__name__,
                latency_s=round(time.monotonic() - started, 3),
                **usage,
            )
            raise
        except BaseException as exc:  # cancelled by the user, or a bug: still close the request in the log
            self.log.append(
                "suggestion_failed",
                suggestion_id=suggestion_id,
                error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                error_kind=type(exc).__name__,
            )
            raise
        verdict = result.verdict
        self.log.append(
            "suggestion_received",
            suggestion_id=suggestion_id,
            rationale=verdict.rationale,
            hunks=[h.to_dict() for h in verdict.hunks],
            raw_text=result.raw_text,
            tool_calls=[{"name": c.name, "arguments": c.arguments} for c in result.last.tool_calls],
            format=verdict.format,
            finish_reason=result.last.finish_reason,
            truncated=verdict.truncated,
            dropped_blocks=verdict.dropped,
            guard=_guard_fields(verdict.guard),
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cost_usd=result.cost_usd,
            latency_s=round(time.monotonic() - started, 3),
            retries=len(result.errors),
            retry_errors=list(result.errors),
        )
        return self.state.suggestions[suggestion_id]

    def preview_hunk(self, suggestion_id: str, index: int) -> list[str]:
        hunk = self._hunk(suggestion_id, index)
        source = self.workspace.read(hunk.path) if (self.workspace.path / hunk.path).exists() else ""
        return edits.hunk_preview(source, hunk)

    def decide(self, suggestion_id: str, decisions: list[HunkDecision]) -> CommitView | None:
        """Record the human's (or policy's) decisions; accepted and edited hunks become one commit."""
        view = self._suggestion(suggestion_id)
        if view.status not in ("received",):
            raise SpeedcopilotError(f"suggestion {suggestion_id} is {view.status}; nothing to decide")
        known = {h.index for h in view.hunks}
        unknown = [d.index for d in decisions if d.index not in known]
        if unknown:
            raise SpeedcopilotError(f"suggestion {suggestion_id} has no hunk(s) {unknown}")
        chosen = [d for d in decisions if d.action in ("accept", "edit")]
        new_files: dict[str, str] = {}
        if chosen:
            self.workspace.require_clean()
            hunks = [self._hunk(suggestion_id, d.index, d.edited_replace if d.action == "edit" else None)
                     for d in sorted(chosen, key=lambda d: d.index)]
            verdict = edits.apply_decisions(self.workspace.tracked_files(), hunks, rationale=view.rationale,
                                            root=self.workspace.path, limits=self.options.edit_limits)
            if not verdict.ok:
                self.log.append("error", message=verdict.error, suggestion_id=suggestion_id, where="decide")
                raise EditApplyError(verdict.error or "the accepted hunks do not apply")
            new_files = dict(verdict.changed)
        for d in decisions:
            self.log.append(
                "hunk_decided",
                suggestion_id=suggestion_id,
                hunk_index=d.index,
                decision=d.action,
                edited_replace=d.edited_replace if d.action == "edit" else None,
                feedback=d.feedback,
                decision_time_s=round(d.decision_time_s, 3),
            )
            if d.feedback:
                self.log.append("feedback_given", suggestion_id=suggestion_id, hunk_index=d.index, text=d.feedback)
        if not new_files:
            return None
        provenance = "ai+human-edit" if any(d.action == "edit" for d in chosen) else "ai"
        accepted = ",".join(str(d.index) for d in sorted(chosen, key=lambda d: d.index))
        subject = _subject_from(view.rationale) or f"Apply suggestion {suggestion_id}"
        parent = self.workspace.head_sha()
        sha = self.workspace.commit_files(
            new_files,
            subject,
            {"Suggestion-Id": suggestion_id, "Hunks-Accepted": accepted, "Provenance": provenance,
             "Session": self.id},
        )
        self.log.append(
            "commit_created",
            sha=sha,
            parent=parent,
            branch=self.workspace.branch(),
            provenance=provenance,
            suggestion_id=suggestion_id,
            hunks_accepted=[d.index for d in chosen],
            message=subject,
        )
        return self.state.commits[-1]

    # -- the working copy -------------------------------------------------------------------
    def script_text(self, sha: str | None = None) -> str:
        return self.workspace.read(self.track.script_name, sha or self.workspace.head_sha())

    def diff_against_start(self) -> str:
        start = self.state.start_commit
        return self.workspace.diff(start, "HEAD") if start else ""

    def check_external_edit(self) -> str | None:
        """The diff of uncommitted changes (a human's editor), or None; logged once per distinct change."""
        if not self.workspace.is_dirty():
            self._seen_external_diff = None
            return None
        diff = self.workspace.dirty_diff()
        if diff != self._seen_external_diff:
            self._seen_external_diff = diff
            self.log.append("external_edit_detected", diff=diff[:20000], head=self.workspace.head_sha())
        return diff

    def commit_external_edit(self, message: str = "Human edit") -> CommitView:
        parent = self.workspace.head_sha()
        sha = self.workspace.commit_working_tree(message, {"Provenance": "human", "Session": self.id})
        self._seen_external_diff = None
        self.log.append("commit_created", sha=sha, parent=parent, branch=self.workspace.branch(),
                        provenance="human", suggestion_id=None, hunks_accepted=[], message=message)
        return self.state.commits[-1]

    def undo(self) -> CommitView:
        parent = self.workspace.head_sha()
        sha = self.workspace.revert_head({"Provenance": "revert", "Session": self.id})
        info = self.workspace.commit_info(sha)
        self.log.append("commit_created", sha=sha, parent=parent, branch=self.workspace.branch(),
                        provenance="revert", suggestion_id=None, hunks_accepted=[], message=info.subject)
        return self.state.commits[-1]

    def checkout(self, sha: str, branch: str | None = None) -> str:
        """Branch from an earlier commit (a new attempt); nothing is lost."""
        name = self.workspace.branch_from(sha, branch)
        self.log.append("branch_switched", sha=self.workspace.head_sha(), branch=name)
        return name

    def switch_branch(self, branch: str) -> str:
        sha = self.workspace.switch(branch)
        self.log.append("branch_switched", sha=sha, branch=branch)
        return sha

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, allow_guard_findings: bool = True) -> RunView:
        from copilot.core import runs

        self.track.prepare_workdir(self.workspace.path)
        self.workspace.require_clean()
        commit = self.workspace.head_sha()
        self._guard(commit, allow_guard_findings)
        run_id = runs.new_run_id()
        run_dir = self.dir / RUNS_DIR / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.track.run_env()}
        command = self.track.launch_command(self.workspace.path, self.options.gpus)
        spec = runs.RunSpec(
            run_id=run_id,
            command=command,
            cwd=self.workspace.path,
            run_dir=run_dir,
            env=env,
            target_val_loss=self.track.target_val_loss,
            timeout_s=self.options.run_timeout_s,
            hang_timeout_s=self._hang_timeout(),
        )
        try:
            handle = self.runner.start(spec)
        except OSError as exc:
            raise RunError(f"could not start {' '.join(command)}: {exc}") from None
        self._handles[run_id] = handle
        self._specs[run_id] = spec
        self.log.append("run_started", run_id=run_id, commit=commit, command=command,
                        runner=getattr(self.runner, "name", "local"), gpus=self.options.gpus,
                        run_dir=str(run_dir), gpu_info=self._gpu_info())
        return self.state.runs[run_id]

    async def watch_run(self, run_id: str, on_line: Callable[[str], None] | None = None) -> Any:
        from copilot.core import runs

        handle, spec = self._handles.get(run_id), self._specs.get(run_id)
        if handle is None or spec is None:
            raise RunError(f"run {run_id} is not live in this session")
        known = len(self.state.runs[run_id].points) if run_id in self.state.runs else 0
        seen = 0

        def on_metric(point: MetricPoint) -> None:
            nonlocal seen
            seen += 1
            if seen > known:  # a re-attached watcher replays the log from the start
                self.log.append("metric", run_id=run_id, **point.to_event_fields())

        result = await runs.watch_run(handle, spec, on_line=on_line, on_metric=on_metric)
        self._finish_run(run_id, result)
        return result

    def cancel_run(self, run_id: str) -> None:
        handle = self._handles.get(run_id)
        if handle is None:
            raise RunError(f"run {run_id} is not live in this session")
        handle.cancel()

    def live_runs(self) -> list[str]:
        return [run_id for run_id, h in self._handles.items() if self.state.runs[run_id].is_live]

    # -- misc -------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.log.append("note", text=text)

    def close(self, reason: str = "user", stop_runs: bool = False) -> None:
        if not self.log.is_open:
            return
        live = self.live_runs()
        if stop_runs:
            for run_id in live:
                self._handles[run_id].cancel()
        self.log.append("session_ended", reason=reason, runs_left_running=[] if stop_runs else live)
        self.log.close()

    # -- internals --------------------------------------------------------------------------
    def _finish_run(self, run_id: str, result: Any) -> None:
        from copilot.core import runs

        fields = result.to_event_fields()
        fields.pop("run_id", None)
        accel = max(int(self.options.gpus or 1), 1) * float(result.wall_time_s or 0.0)
        self.log.append("run_finished", run_id=run_id, accelerator_seconds=round(accel, 3), **fields)
        runs.write_result(self._specs[run_id].run_dir, result)
        self._flag_timer_gap(run_id, result)
        commit = self.state.runs[run_id].commit
        summary = f"{run_id}: {fields.get('outcome')}"
        if fields.get("time_to_target_ms") is not None:
            summary += f", target in {fields['time_to_target_ms'] / 1000:.1f}s"
        if fields.get("final_val_loss") is not None:
            summary += f", final val {fields['final_val_loss']:.4f}"
        try:
            self.workspace.add_run_note(commit, summary)
        except Exception:  # a note is a convenience; the event log is the record
            pass
        self._handles.pop(run_id, None)

    def _gpu_info(self) -> list[dict[str, Any]]:
        """Name and memory of the local GPUs a GPU track trains on (remote runners report none here)."""
        if self.track.name != "nanogpt" or getattr(self.runner, "name", "local") != "local":
            return []
        from dataclasses import asdict

        from copilot.core.tracks.nanogpt import detect_gpus

        return [asdict(g) for g in detect_gpus()]

    def _hang_timeout(self) -> float | None:
        """A track with a long silent start (nanogpt compiles for minutes) raises the hang threshold."""
        hang = self.options.hang_timeout_s
        floor = getattr(self.track, "min_hang_timeout_s", None)
        if hang is None or floor is None:
            return hang
        return max(hang, float(floor))

    def _flag_timer_gap(self, run_id: str, result: Any) -> None:
        """A script's own train_time can be gamed; compare it with the runner's wall clock."""
        try:
            from copilot.core.edits.guard import timer_gap_flag
        except ImportError:
            return
        if result.train_time_ms is None or result.wall_time_s is None:
            return
        flag = timer_gap_flag(result.wall_time_s, result.train_time_ms)
        if flag:
            self.log.append("note", text=f"run {run_id}: {flag}", run_id=run_id, kind="timer_gap")

    def _reattach_runs(self) -> None:
        from copilot.core import runs

        for run_id, view in list(self.state.runs.items()):
            if not view.is_live:
                continue
            run_dir = self.dir / RUNS_DIR / run_id
            finished = runs.read_result(run_dir)
            if finished is not None:
                self._finish_run_from_disk(run_id, finished)
                continue
            try:
                handle = self.runner.attach(run_dir)
            except SpeedcopilotError as exc:
                self.log.append("error", message=f"could not re-attach to run {run_id}: {exc}", run_id=run_id)
                continue
            spec = runs.RunSpec(
                run_id=run_id, command=view.command, cwd=self.workspace.path, run_dir=run_dir, env={},
                target_val_loss=self.track.target_val_loss, timeout_s=self.options.run_timeout_s,
                hang_timeout_s=self.options.hang_timeout_s,
            )
            self._handles[run_id] = handle
            self._specs[run_id] = spec
            self.log.append("run_attached", run_id=run_id)

    def _finish_run_from_disk(self, run_id: str, result: Any) -> None:
        fields = result.to_event_fields()
        fields.pop("run_id", None)
        accel = max(int(self.options.gpus or 1), 1) * float(result.wall_time_s or 0.0)
        self.log.append("run_finished", run_id=run_id, accelerator_seconds=round(accel, 3), **fields)

    def _sync_head_with_git(self) -> None:
        head, branch = self.workspace.head_sha(), self.workspace.branch()
        if head != self.state.head or branch != self.state.branch:
            self.log.append("branch_switched", sha=head, branch=branch, reason="resumed at the workspace's HEAD")

    def _guard_check(self) -> edits.GuardCheck:
        """What the guard compares a candidate with: the record's script as the session started."""
        start = self.state.start_commit or self.workspace.head_sha()
        try:
            base = self.workspace.read(self.track.script_name, start)
        except Exception:  # a workspace without the script at its start commit (an external clone)
            base = ""
        return edits.GuardCheck(base=base, path=self.track.script_name, track=self.track.name)

    def _guard(self, commit: str, allow_findings: bool) -> None:
        try:
            from copilot.core.edits import guard
        except ImportError:
            return
        start = self.state.start_commit or commit
        report = guard.check_integrity(
            self.workspace.read(self.track.script_name, start),
            self.workspace.read(self.track.script_name, commit),
            self.track.name,
        )
        if report.findings:
            self.log.append("guard_report", commit=commit, findings=[_finding_dict(f) for f in report.findings],
                            blocking=bool(report.blocking))
            if report.blocking and not allow_findings:
                lines = "; ".join(f"{f.kind} (line {f.line})" for f in report.findings[:5])
                raise RunError(f"integrity guard refused this run: it touches protected parts: {lines}")

    def _prompt_context(self, files: Mapping[str, str], instruction: str | None,
                        attempts: list[Any] | None = None) -> Any:
        from copilot.core.llm import prompts

        hints = {lv: text for lv in self.options.hint_levels
                 if (text := self.track.hint(self.state.record, lv))}
        return prompts.PromptContext(
            track=self.track.name,
            record=self.state.record,
            target_val_loss=self.state.target_val_loss,
            record_time_s=self.state.record_time_s,
            next_record_time_s=self.state.next_record_time_s,
            script_path=self.track.script_name,
            script_text=files.get(self.track.script_name, ""),
            companion_files={k: v for k, v in files.items() if k != self.track.script_name},
            hints=hints,
            attempts=attempts if attempts is not None else self._attempts(),
            feedback=self._last_feedback(),
            instruction=instruction,
            instruction_from="search policy" if self.state.mode == "auto" else "human",
            edit_format=self.options.edit_format,
        )

    def _attempts(self) -> list[Any]:
        from copilot.core.llm import prompts

        subjects = {c.sha: c.message for c in self.state.commits}
        attempts = []
        for run in list(self.state.runs.values())[-ATTEMPTS_IN_PROMPT:]:
            result = run.result or {}
            ttt = result.get("time_to_target_ms")
            attempts.append(
                prompts.AttemptSummary(
                    commit=run.commit[:10],
                    description=subjects.get(run.commit, ""),
                    outcome=run.status,
                    time_to_target_s=ttt / 1000 if ttt is not None else None,
                    final_val_loss=result.get("final_val_loss"),
                    error_tail="\n".join(result.get("error_tail") or [])[-2000:],
                )
            )
        return attempts

    def _last_feedback(self) -> str | None:
        decided = [s for s in self.state.suggestions.values() if s.status == "decided"]
        if not decided:
            return None
        last = decided[-1]
        notes = [f"hunk {h.index}: {h.feedback}" for h in last.hunks if h.feedback]
        rejected = [str(h.index) for h in last.hunks if h.decision == "reject" and not h.feedback]
        if rejected:
            notes.append(f"hunk(s) {', '.join(rejected)} rejected without comment")
        return "\n".join(notes) or None

    def _suggestion(self, suggestion_id: str) -> SuggestionView:
        view = self.state.suggestions.get(suggestion_id)
        if view is None:
            raise SpeedcopilotError(f"no suggestion {suggestion_id} in this session")
        return view

    def _hunk(self, suggestion_id: str, index: int, replace: str | None = None) -> edits.Hunk:
        view = self._suggestion(suggestion_id)
        for h in view.hunks:
            if h.index == index:
                return edits.Hunk(index=h.index, path=h.path, search=h.search,
                                  replace=h.replace if replace is None else replace, mode=h.mode, anchor=h.anchor)
        raise SpeedcopilotError(f"suggestion {suggestion_id} has no hunk {index}")


def resolve_session_dir(sessions_root: Path, session_id: str) -> Path:
    """Exact id, or a unique prefix of one, or 'last'."""
    if not sessions_root.is_dir():
        raise SessionNotFoundError(f"no sessions folder at {sessions_root}")
    candidates = sorted(p for p in sessions_root.iterdir() if (p / EVENTS_FILE).exists())
    if session_id == "last" and candidates:
        return candidates[-1]
    exact = [p for p in candidates if p.name == session_id]
    if exact:
        return exact[0]
    matches = [p for p in candidates if p.name.startswith(session_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise SessionNotFoundError(f"{session_id!r} matches several sessions: {', '.join(p.name for p in matches)}")
    raise SessionNotFoundError(
        f"no session {session_id!r} in {sessions_root}; `speedcopilot sessions list` shows them"
    )


def ensure_not_open(session_dir: Path) -> None:
    """Fail fast with SessionLockedError if another process writes this session (before building anything)."""
    probe = EventLog(session_dir)
    probe.open()
    probe.close()


def list_session_dirs(sessions_root: Path) -> list[Path]:
    if not sessions_root.is_dir():
        return []
    return sorted(p for p in sessions_root.iterdir() if (p / EVENTS_FILE).exists())


def load_state(session_dir: Path) -> tuple[SessionState, list[str]]:
    """Read-only projection of a session (no lock taken)."""
    result = read_events(session_dir / EVENTS_FILE)
    return SessionState.from_events(result.events), result.problems


def _next_record_number(track: Track, record: int) -> int | None:
    """The next rung of the ladder (nanogpt's task 6 → 8 skips the re-timing record 7)."""
    next_of = getattr(track, "next_record", None)
    if callable(next_of):
        return next_of(record)
    later = [r.number for r in track.records() if r.number > record]
    return min(later) if later else None


def _local_runner() -> Any:
    from copilot.core.runs import LocalRunner

    return LocalRunner()


def _usage_of(exc: BaseException) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for key in ("prompt_tokens", "completion_tokens", "cost_usd"):
        value = getattr(exc, key, None)
        if value is not None:
            usage[key] = value
    return usage


def _subject_from(rationale: str) -> str:
    for line in rationale.splitlines():
        line = line.strip().lstrip("#*- ").strip()
        if line:
            return line[:72]
    return ""


def _guard_fields(report: Any) -> dict[str, Any] | None:
    """A guard report as event fields (None when the guard did not run)."""
    if report is None:
        return None
    return {"blocking": bool(report.blocking), "summary": report.summary(),
            "findings": [_finding_dict(f) for f in getattr(report, "findings", [])]}


def _finding_dict(finding: Any) -> dict[str, Any]:
    if hasattr(finding, "to_dict"):
        return finding.to_dict()
    keys = ("rule", "kind", "line", "text", "severity", "where", "reason", "why")
    return {k: getattr(finding, k) for k in keys if hasattr(finding, k)}
