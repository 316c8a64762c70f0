"""The co-pilot loop: propose → review → commit → run → observe, every step a typed event.

One Session owns the event log, the git workspace, the provider, the runner — and the concurrency: git and
disk work runs on the session's one git thread (GitPython's persistent process is never shared between
threads), process starts run off the event loop, and the watchers of live runs are the session's own tasks, so
a driver (the app, the agent, the CLI) only awaits its operations and can come and go — taking over from the
agent, or a resumed app — without losing a run. Nothing here sleeps on the event loop: stopping a process
sends the signal and schedules the escalation.

Construction (`create`, `open`) is synchronous (it runs before any loop, or in the app's opening thread); every
operation after it is a coroutine, except `note` (one event).
"""

from __future__ import annotations

import asyncio
import functools
import os
import platform
import secrets
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from copilot import __version__
from copilot.core import edits
from copilot.core.errors import (
    EditApplyError,
    EditParseError,
    ProviderError,
    RunError,
    SessionNotFoundError,
    SpeedcopilotError,
    StorageError,
)
from copilot.core.runs.env import Scrubber, run_environment
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session import schema as s
from copilot.core.session.events import EVENTS_FILE, Event, EventLog, read_events
from copilot.core.session.projection import CommitView, RunView, SessionState, SuggestionView
from copilot.core.session.schema import HunkDecision
from copilot.core.session.storage import is_storage_fault, storage_error
from copilot.core.session.workspace import Workspace
from copilot.core.tracks.base import Track

WORKSPACE_DIR = "workspace"
RUNS_DIR = "runs"
RUN_CODE_DIR = "code"  # in a run's folder: its commit's own copy (start_run(commit=...)), removed when it ends
ATTEMPTS_IN_PROMPT = 5
KILL_GRACE_S = 5.0
DISK_CHECK_S = 1.0  # how often a watcher asks whether the session's disk went read-only (one statvfs)
SUBJECT_CHARS = 72

T = TypeVar("T")
LineListener = Callable[[str, str], None]  # (run_id, line)


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
    runner_url: str = "local"  # local | ssh://… | slurm://…; recorded so a resume re-attaches the same way
    edit_format: str = "search_replace"  # how the model is asked to write edits (edits.FORMATS)
    edit_limits: edits.EditLimits = field(default_factory=edits.EditLimits)
    run_env_pass: tuple[str, ...] = ()  # environment variables the user lets runs see beyond the allow-list
    secrets: tuple[str, ...] = ()  # values scrubbed from run output (the API key), besides the environment's
    agent_guard_override: bool = False  # an autonomous driver may train commits the guard blocks (config)


class GuardBlocked(RunError):
    """The integrity guard found a protected part changed: the run needs the human's say-so first."""

    def __init__(self, message: str, commit: str, report: Any) -> None:
        super().__init__(message)
        self.commit = commit
        self.report = report


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
        self.scrub = Scrubber.from_environment(extra=(*options.secrets, getattr(provider, "_api_key", None)))
        self._handles: dict[str, Any] = {}
        self._specs: dict[str, Any] = {}
        self._watchers: dict[str, asyncio.Task[Any]] = {}
        self._disk_checked_at = 0.0
        self._reattached: dict[str, str] = {}  # run id -> who re-attached it ("resume by run"), for recorded_by
        self._line_listeners: list[LineListener] = []
        self._seen_external_diff: str | None = None
        self._git_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"git-{self.id}")
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
        baseline: dict[str, Any] | None = None,
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
        _prepare_workdir(track, workspace.path)
        log = EventLog(session_dir)
        log.open()
        state = SessionState()
        session = cls(session_dir, log, state, workspace, track, provider, runner or _local_runner(), options)
        log.append(s.SessionStarted(
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
            edit_format=options.edit_format,
        ))
        if baseline is not None:
            session.record_baseline(baseline)
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
        driver: str = "app",
    ) -> "Session":
        """Resume a session: rebuild state from its log, record the end of runs that ended meanwhile, and
        re-attach to runs still going (their watchers start with `resume_watching`)."""
        session_dir = resolve_session_dir(sessions_root, session_id)
        log = EventLog(session_dir)
        existing = log.open()
        try:
            state = SessionState.from_events(existing.events)
            workspace = Workspace.open(session_dir / WORKSPACE_DIR)
        except Exception:
            log.close()
            raise
        started = next((e.body for e in existing.events if e.type == "session_started"), None)
        base = options or SessionOptions()
        if isinstance(started, s.SessionStarted):
            base = replace(
                base,
                mode=state.mode,
                hint_levels=tuple(state.hint_levels),
                participant=state.participant,
                study=started.study,
                gpus=int(started.gpus or base.gpus or 1),
                budget=started.budget,
                runner_url=started.runner_url or "local",
            )
        if state.target_val_loss and hasattr(track, "target_val_loss"):
            track.target_val_loss = state.target_val_loss  # a session keeps the target it started with
        session = cls(session_dir, log, state, workspace, track, provider, runner or _local_runner(), base)
        log.append(s.SessionResumed(provider=provider.name, model=provider.model, provider_label=provider.label,
                                    offline=bool(provider.offline), problems=list(existing.problems),
                                    head=workspace.head_sha()))
        session._sync_head_with_git()
        session._reattach_runs(driver)
        return session

    # -- the git thread ---------------------------------------------------------------------
    async def _git(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking git / disk work on the session's one git thread. A write the disk refuses (full,
        read-only, failing) comes back as one StorageError line."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._git_thread, functools.partial(fn, *args, **kwargs))
        except Exception as exc:
            if is_storage_fault(exc):
                raise self._storage_fault(exc) from None
            raise

    def _storage_fault(self, exc: BaseException) -> StorageError:
        return storage_error(exc, f"session {self.id} could not write to its folder",
                             "new work stopped; a run in progress keeps training. Free space or fix the disk, "
                             f"then `speedcopilot sessions repair {self.id}` records what happened meanwhile")

    # -- subscriptions ----------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self.log.subscribe(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        self.log.unsubscribe(callback)

    def subscribe_lines(self, callback: LineListener) -> None:
        """Output lines of every watched run (already scrubbed of secrets), from the event loop."""
        self._line_listeners.append(callback)

    def unsubscribe_lines(self, callback: LineListener) -> None:
        if callback in self._line_listeners:
            self._line_listeners.remove(callback)

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
        self.log.append(s.SuggestionRequested(suggestion_id=suggestion_id, instruction=instruction,
                                              edit_format=self.options.edit_format))
        files, guard = await self._git(self._files_and_guard_base)
        request = suggest.EditRequest(files, self.track.script_name, edit_format=self.options.edit_format,
                                      root=self.workspace.path, limits=self.options.edit_limits, guard=guard)
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
            self.log.append(s.SuggestionFailed(suggestion_id=suggestion_id, error=str(exc),
                                               error_kind=type(exc).__name__,
                                               latency_s=round(time.monotonic() - started, 3), **_usage_of(exc)))
            raise
        except BaseException as exc:  # cancelled by the user, or a bug: still close the request in the log
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.log.append(s.SuggestionFailed(suggestion_id=suggestion_id, error=error,
                                               error_kind=type(exc).__name__))
            raise
        verdict = result.verdict
        self.log.append(s.SuggestionReceived(
            suggestion_id=suggestion_id,
            rationale=verdict.rationale,
            hunks=list(verdict.hunks),
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
        ))
        return self.state.suggestions[suggestion_id]

    def _files_and_guard_base(self) -> tuple[dict[str, str], edits.GuardCheck]:
        return self.workspace.tracked_files(), self._guard_check()

    async def preview_hunk(self, suggestion_id: str, index: int) -> tuple[list[str], int | None]:
        """What the hunk does at its match in the current file: diff lines, and the first line it touches."""
        hunk = self._hunk(suggestion_id, index)
        return await self._git(self._preview, hunk)

    def _preview(self, hunk: edits.Hunk) -> tuple[list[str], int | None]:
        files = self.workspace.tracked_files()
        name = edits.resolve_path(hunk.path, files) or hunk.path
        source = files.get(name, "")
        span = edits.hunk_span(source, hunk)
        return edits.hunk_preview(source, hunk), span[0] if span else None

    async def decide(self, suggestion_id: str, decisions: Sequence[HunkDecision]) -> CommitView | None:
        """Apply the human's (or a policy's) decisions: accepted and edited hunks become one commit, and the
        decisions are logged together with the commit they produced — never before it."""
        view = self._suggestion(suggestion_id)
        if view.status not in ("received",):
            raise SpeedcopilotError(f"suggestion {suggestion_id} is {view.status}; nothing to decide")
        known = {h.index for h in view.hunks}
        unknown = [d.index for d in decisions if d.index not in known]
        if unknown:
            raise SpeedcopilotError(f"suggestion {suggestion_id} has no hunk(s) {', '.join(map(str, unknown))}")
        return await self._git(self._decide, view, list(decisions))

    def _decide(self, view: SuggestionView, decisions: list[HunkDecision]) -> CommitView | None:
        chosen = sorted((d for d in decisions if d.applies), key=lambda d: d.index)
        commit: CommitView | None = None
        if chosen:
            self.workspace.require_clean()
            every = len(chosen) == len(view.hunks)
            hunks = []
            for d in chosen:
                hunk = d.applied_to(self._hunk(view.id, d.index))
                if not every:  # positions from the answer's own order only hold when every hunk lands
                    hunk = replace(hunk, line_hint=None, ordered=False)
                hunks.append(hunk)
            verdict = edits.apply_decisions(self.workspace.tracked_files(), hunks, rationale=view.rationale,
                                            root=self.workspace.path, limits=self.options.edit_limits)
            if not verdict.ok:
                self.log.append(s.CommitFailed(suggestion_id=view.id, error=verdict.error or ""))
                raise EditApplyError(verdict.error or "the accepted hunks do not apply")
            provenance = "ai+human-edit" if any(d.action == "edit" for d in chosen) else "ai"
            subject, body = commit_message(view.rationale, view.id)
            accepted = ", ".join(str(d.index + 1) for d in chosen)
            parent = self.workspace.head_sha()
            try:
                sha = self.workspace.commit_files(
                    verdict.changed, subject + (f"\n\n{body}" if body else ""),
                    {"Suggestion-Id": view.id, "Hunks-Accepted": f"{accepted} of {len(view.hunks)}",
                     "Provenance": provenance, "Session": self.id},
                )
            except SpeedcopilotError as exc:
                self.log.append(s.CommitFailed(suggestion_id=view.id, error=str(exc)))
                raise
            self.log.append(s.CommitCreated(sha=sha, parent=parent, branch=self.workspace.branch(),
                                            provenance=provenance, suggestion_id=view.id,
                                            hunks_accepted=[d.index for d in chosen], message=subject))
            commit = self.state.commits[-1]
        self.log.append(s.SuggestionDecided(suggestion_id=view.id, decisions=list(decisions),
                                            commit=commit.sha if commit else None))
        return commit

    # -- the working copy -------------------------------------------------------------------
    async def script_text(self, sha: str | None = None) -> str:
        return await self._git(self._script_at, sha)

    def _script_at(self, sha: str | None) -> str:
        return self.workspace.read(self.track.script_name, sha or self.workspace.head_sha())

    async def diff_against_start(self) -> str:
        start = self.state.start_commit
        return await self._git(self.workspace.diff, start, "HEAD") if start else ""

    async def script_and_diff(self) -> tuple[str, str]:
        """The script at HEAD and its diff against the starting record, in one trip to the git thread."""
        def both() -> tuple[str, str]:
            start = self.state.start_commit
            return self._script_at(None), self.workspace.diff(start, "HEAD") if start else ""

        return await self._git(both)

    async def check_external_edit(self) -> str | None:
        """The diff of uncommitted changes (a human's editor), or None; logged once per distinct change."""
        return await self._git(self._check_external_edit)

    def _check_external_edit(self) -> str | None:
        if not self.log.is_open:
            return None
        if not self.workspace.is_dirty():
            self._seen_external_diff = None
            return None
        diff = self.workspace.dirty_diff()
        if diff != self._seen_external_diff:
            self._seen_external_diff = diff
            self.log.append(s.ExternalEditDetected(diff=diff[:20000], head=self.workspace.head_sha()))
        return diff

    async def commit_external_edit(self, message: str = "Human edit") -> CommitView:
        def commit() -> CommitView:
            parent = self.workspace.head_sha()
            sha = self.workspace.commit_working_tree(message, {"Provenance": "human", "Session": self.id})
            self._seen_external_diff = None
            self.log.append(s.CommitCreated(sha=sha, parent=parent, branch=self.workspace.branch(),
                                            provenance="human", message=message))
            return self.state.commits[-1]

        return await self._git(commit)

    async def undo(self) -> CommitView:
        def revert() -> CommitView:
            parent = self.workspace.head_sha()
            sha = self.workspace.revert_head({"Provenance": "revert", "Session": self.id})
            info = self.workspace.commit_info(sha)
            self.log.append(s.CommitCreated(sha=sha, parent=parent, branch=self.workspace.branch(),
                                            provenance="revert", message=info.subject))
            return self.state.commits[-1]

        return await self._git(revert)

    async def checkout(self, sha: str, branch: str | None = None) -> str:
        """Branch from an earlier commit (a new attempt); nothing is lost."""
        def branch_from() -> str:
            name = self.workspace.branch_from(sha, branch)
            self.log.append(s.BranchSwitched(sha=self.workspace.head_sha(), branch=name))
            return name

        return await self._git(branch_from)

    async def switch_branch(self, branch: str) -> str:
        def switch() -> str:
            sha = self.workspace.switch(branch)
            self.log.append(s.BranchSwitched(sha=sha, branch=branch))
            return sha

        return await self._git(switch)

    async def branches(self) -> list[str]:
        return await self._git(self.workspace.branches)

    async def branch_heads(self) -> dict[str, str]:
        """Every branch and the commit it points at."""
        return await self._git(lambda: {h.name: h.commit.hexsha for h in self.workspace.repo.heads})

    async def head(self) -> tuple[str, str]:
        """(sha, branch) of the workspace's HEAD, from git."""
        return await self._git(lambda: (self.workspace.head_sha(), self.workspace.branch()))

    async def stash_leftovers(self) -> bool:
        """Stash uncommitted changes a killed agent left between writing and committing; True if any."""
        def stash() -> bool:
            if not self.workspace.is_dirty():
                return False
            self.workspace.repo.git.stash("push", "--include-untracked", "-m", "left by a killed agent")
            return True

        return await self._git(stash)

    # -- the integrity guard ----------------------------------------------------------------
    async def guard_check(self, commit: str | None = None) -> tuple[str, Any]:
        """(commit, the guard's report) for HEAD or `commit` against the record the session started from.
        A guard that cannot load or crashes gives a blocking report (fail closed)."""
        return await self._git(self._guard_commit, commit)

    def _guard_commit(self, commit: str | None) -> tuple[str, Any]:
        sha = commit or self.workspace.head_sha()
        check = self._guard_check()
        files = self.workspace.tracked_files(sha)
        return sha, edits.verdict.run_guard(check, files)

    def _guard_check(self) -> edits.GuardCheck:
        """What the guard compares a candidate with: the record's script as the session started."""
        start = self.state.start_commit or self.workspace.head_sha()
        try:
            base = self.workspace.read(self.track.script_name, start)
        except SpeedcopilotError:  # a workspace without the script at its start commit (an external clone)
            base = ""
        return edits.GuardCheck(base=base, path=self.track.script_name, track=self.track.name)

    # -- runs -------------------------------------------------------------------------------
    async def start_run(self, *, override_guard: bool = False, started_by: str = "app",
                        stop_at_target: bool = False, commit: str | None = None,
                        node_id: int | None = None) -> RunView:
        """Train HEAD in the working copy, or `commit` in a copy of its own (a detached `git worktree` in the
        run's folder, prepared by the track and removed when the run ends), so the working copy may move on
        while the run goes: the parallel agent runs several commits at once. A commit the guard blocks raises
        GuardBlocked unless `override_guard` (the human chose "run anyway", which is logged)."""
        from copilot.core import runs

        own_copy = commit is not None
        if commit is None:
            commit, report = await self._git(self._ready_to_run)
        else:
            commit, report = await self._git(self._ready_to_run_commit, commit)
        if report is not None and report.findings:
            self.log.append(s.GuardReport(commit=commit, findings=[_finding_dict(f) for f in report.findings],
                                          blocking=bool(report.blocking)))
        if report is not None and report.blocking:
            if not override_guard:
                raise GuardBlocked(_blocked_message(report), commit, report)
            self.log.append(s.GuardOverride(commit=commit, choice="run", rules=_rules(report)))
        run_id = runs.new_run_id()
        while (self.dir / RUNS_DIR / run_id).exists():  # parallel starts within one second may collide
            run_id = runs.new_run_id()
        run_dir = self.dir / RUNS_DIR / run_id
        env = run_environment(self.track.run_env(), passed=self.options.run_env_pass)
        cwd = await self._git(self._materialize, commit, run_dir / RUN_CODE_DIR) if own_copy else self.workspace.path
        command: list[str] = []
        try:
            command = self.track.launch_command(cwd, self.options.gpus)
            spec = runs.RunSpec(
                run_id=run_id,
                command=command,
                cwd=cwd,
                run_dir=run_dir,
                env=env,
                target_val_loss=self.track.target_val_loss,
                timeout_s=self.options.run_timeout_s,
                hang_timeout_s=self._hang_timeout(),
                stop_at_target=stop_at_target,
            )
            handle = await asyncio.to_thread(self._start_process, spec)
        except Exception as exc:
            if own_copy:
                await self._git(self._drop_copy, run_dir)
            if isinstance(exc, OSError):
                if is_storage_fault(exc):
                    raise self._storage_fault(exc) from None
                raise RunError(f"could not start {' '.join(command)}: {exc}") from None
            raise
        self._handles[run_id] = handle
        self._specs[run_id] = spec
        queued = await asyncio.to_thread(handle.is_pending)
        self.log.append(s.RunStarted(run_id=run_id, commit=commit, command=list(spec.command),
                                     runner=getattr(self.runner, "name", "local"), gpus=self.options.gpus,
                                     run_dir=str(run_dir), gpu_info=self._gpu_info(),
                                     stop_at_target=stop_at_target, started_by=started_by, node_id=node_id,
                                     workdir=str(cwd) if own_copy else None, queued=queued))
        self.watch(run_id)
        return self.state.runs[run_id]

    def _ready_to_run(self) -> tuple[str, Any]:
        from copilot.core.tracks.doctor import preflight

        self.workspace.require_clean()
        _prepare_workdir(self.track, self.workspace.path)
        # a run that would fail at once (no GPU, no shards, wrong torch) is refused with the fix, not started
        preflight(self.track, self.options.gpus, self.options.runner_url, self.state.record)
        return self._guard_commit(None)

    def _ready_to_run_commit(self, commit: str) -> tuple[str, Any]:
        from copilot.core.tracks.doctor import preflight

        try:
            sha = self.workspace.repo.commit(commit).hexsha
        except Exception:  # gitdb's BadName / ValueError: not a commit of this workspace
            raise RunError(f"no commit {commit!r} in the workspace; nothing to run") from None
        preflight(self.track, self.options.gpus, self.options.runner_url, self.state.record)
        return self._guard_commit(sha)

    def _materialize(self, sha: str, path: Path) -> Path:
        """A detached worktree of `sha` at `path` (a git checkout, so a runner that syncs commits, like ssh,
        finds the commit there), prepared by the track like the working copy is."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.workspace.repo.git.worktree("add", "--detach", str(path), sha)
        except Exception as exc:  # git's own message says why (disk full, path taken)
            raise RunError(f"could not place commit {sha[:10]} in {path}: {exc}") from None
        _prepare_workdir(self.track, path)
        return path

    def _drop_copy(self, run_dir: Path) -> None:
        """Remove a run's own copy of its commit (the commit stays in git, the output in the run folder)."""
        path = Path(run_dir) / RUN_CODE_DIR
        if not path.exists():
            return
        try:
            self.workspace.repo.git.worktree("remove", "--force", str(path))
        except Exception:  # a half-made or foreign folder: remove it and let git forget it
            import shutil

            shutil.rmtree(path, ignore_errors=True)
            try:
                self.workspace.repo.git.worktree("prune")
            except Exception:
                pass

    def _start_process(self, spec: Any) -> Any:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        return self.runner.start(spec)

    async def log_guard_choice(self, commit: str, choice: str, report: Any) -> None:
        """The human's answer to a blocked run ("back": not run); "run" is logged by start_run."""
        self.log.append(s.GuardOverride(commit=commit, choice=choice, rules=_rules(report)))

    def watch(self, run_id: str) -> "asyncio.Task[Any]":
        """The session's watcher of a live run (started once): it logs metrics, the live target and the
        end. Drivers await `wait_run`; cancelling their wait never stops the watching."""
        task = self._watchers.get(run_id)
        if task is None:
            if run_id not in self._handles:
                raise RunError(f"run {run_id} is not live in this session")
            task = asyncio.ensure_future(self._watch(run_id))
            self._watchers[run_id] = task
        return task

    def is_watching(self, run_id: str) -> bool:
        """A watcher follows this run now (it reads the run's output from the start and hands out every line)."""
        task = self._watchers.get(run_id)
        return task is not None and not task.done()

    async def wait_run(self, run_id: str) -> Any:
        """The RunResult of a live run, when it ends (shielded: the watcher goes on if the waiter stops)."""
        return await asyncio.shield(self.watch(run_id))

    def resume_watching(self) -> list[str]:
        """Start watchers for every live run this session holds (after `open`); returns their ids."""
        live = self.live_runs()
        for run_id in live:
            self.watch(run_id)
        return live

    async def _watch(self, run_id: str) -> Any:
        from copilot.core import runs

        handle, spec = self._handles[run_id], self._specs[run_id]
        view = self.state.runs.get(run_id)
        known = view.point_count if view is not None else 0
        seen = 0
        target = spec.target_val_loss

        def on_metric(point: MetricPoint) -> None:
            nonlocal seen
            seen += 1
            if seen <= known or not self.log.is_open:  # a re-attached watcher replays the log from the start
                return
            self.log.append(s.Metric.of(run_id, point))
            run = self.state.runs.get(run_id)
            if (point.val_loss is not None and point.val_loss <= target and run is not None
                    and run.target is None):
                self.log.append(s.TargetReached(run_id=run_id, step=point.step, val_loss=point.val_loss,
                                                time_to_target_ms=point.train_time_ms))

        def on_line(line: str) -> None:
            line = self.scrub(line)
            for listener in list(self._line_listeners):
                listener(run_id, line)

        def on_running() -> None:  # a queued run (SLURM) started: its run time counts from now on
            run = self.state.runs.get(run_id)
            if run is not None and run.queued and self.log.is_open:
                self.log.append(s.RunRunning(run_id=run_id, started_at=handle.started_at,
                                             queue_time_s=handle.queue_time_s))

        result = await runs.watch_run(handle, spec, on_line=on_line, on_metric=on_metric, save_result=False,
                                      on_running=on_running, on_poll=self._check_disk)
        # what waiters get is scrubbed too
        return await self._finish_run(run_id, result, self._reattached.get(run_id, "watcher"))

    async def cancel_run(self, run_id: str) -> None:
        """Stop a live run on the user's request: the marker and SIGTERM go out now; the SIGKILL escalation
        (after KILL_GRACE_S) is the watcher's job, awaited without blocking anything."""
        handle = self._handles.get(run_id)
        if handle is None:
            raise RunError(f"run {run_id} is not live in this session")
        await asyncio.to_thread(handle.request_stop)

    def live_runs(self) -> list[str]:
        return [run_id for run_id in self._handles if run_id in self.state.runs and self.state.runs[run_id].is_live]

    def _check_disk(self) -> None:
        """A disk the kernel turned read-only under the session (a failing disk) stops new work at once, not
        when the next event would be written: a run that went quiet would otherwise be watched for nothing."""
        now = time.monotonic()
        if now - self._disk_checked_at < DISK_CHECK_S or not self.log.is_open:
            return
        self._disk_checked_at = now
        self.log.probe()

    def run_is_alive(self, run_id: str) -> bool:
        """The run's command still runs (False for a run this session holds no handle of)."""
        handle = self._handles.get(run_id)
        return handle is not None and handle.is_alive()

    # -- misc -------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.log.append(s.Note(text=text))

    def record_baseline(self, fields: Mapping[str, Any]) -> None:
        """Log the record times this session's numbers use from now on (core/research/baselines.py)."""
        known = s._field_names(s.BaselineChosen)
        self.log.append(s.BaselineChosen(**{k: v for k, v in fields.items() if k in known}))

    async def close(self, reason: str = "user", stop_runs: bool = False) -> None:
        """End the session. Live runs go on (a later resume records their end) unless `stop_runs`."""
        if not self.log.is_open:
            return
        live = self.live_runs()
        if stop_runs:
            for run_id in live:
                await self.cancel_run(run_id)
            await asyncio.gather(*(asyncio.shield(self.watch(r)) for r in live), return_exceptions=True)
        for task in self._watchers.values():
            if not task.done():
                task.cancel()
        self.log.append(s.SessionEnded(reason=reason, runs_left_running=[r for r in live if not stop_runs]))
        self.log.close()
        self._git_thread.shutdown(wait=False)

    def abandon(self) -> None:
        """What a crash of this process leaves behind: the watchers stop, the log closes without a
        session_ended, the runs go on. (A later open records their end.)"""
        for task in self._watchers.values():
            if not task.done():
                task.cancel()
        self.log.close()
        self._git_thread.shutdown(wait=False)

    def close_now(self, reason: str = "ui-exit") -> None:
        """Synchronous close for `finally` blocks with no loop left: runs keep going."""
        if not self.log.is_open:
            return
        for task in self._watchers.values():
            if not task.done():
                task.cancel()
        self.log.append(s.SessionEnded(reason=reason, runs_left_running=self.live_runs()))
        self.log.close()
        self._git_thread.shutdown(wait=False)

    # -- internals --------------------------------------------------------------------------
    async def _finish_run(self, run_id: str, result: Any, recorded_by: str) -> Any:
        from copilot.core import runs

        result = _scrubbed(result, self.scrub)
        spec = self._specs.get(run_id)
        if spec is not None:
            await self._git(runs.write_result, spec.run_dir, result)
        self._log_finished(run_id, result, recorded_by)
        await self._git(self._note_run_result, run_id, result)
        await self._git(self._drop_copy, self.dir / RUNS_DIR / run_id)
        self._handles.pop(run_id, None)
        return result

    def _log_finished(self, run_id: str, result: Any, recorded_by: str) -> None:
        if not self.log.is_open:
            return
        fields = result.to_event_fields()
        fields.pop("run_id", None)
        queue = fields.pop("queue_time_s", None)
        accel = max(int(self.options.gpus or 1), 1) * float(result.wall_time_s or 0.0)
        known = set(s._field_names(s.RunFinished))
        body = s.RunFinished(run_id=run_id, accelerator_seconds=round(accel, 3), queue_time_s=queue,
                             recorded_by=recorded_by, **{k: v for k, v in fields.items() if k in known},
                             extra={k: v for k, v in fields.items() if k not in known})
        self.log.append(body)
        self._flag_timer_gap(run_id, result)

    def _note_run_result(self, run_id: str, result: Any) -> None:
        commit = self.state.runs[run_id].commit if run_id in self.state.runs else None
        if not commit:
            return
        summary = f"{run_id}: {result.outcome.value}"
        if result.time_to_target_ms is not None:
            summary += f", target in {result.time_to_target_ms / 1000:.1f}s"
        if result.final_val_loss is not None:
            summary += f", final val {result.final_val_loss:.4f}"
        try:
            self.workspace.add_run_note(commit, summary)
        except Exception:  # a note is a convenience; the event log is the record
            pass

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
        from copilot.core.edits.guard import timer_gap_flag

        if result.train_time_ms is None or result.wall_time_s is None:
            return
        flag = timer_gap_flag(result.wall_time_s, result.train_time_ms)
        if flag:
            self.log.append(s.Note(text=f"run {run_id}: {flag}", run_id=run_id, kind="timer_gap"))

    def _reattach_runs(self, driver: str) -> None:
        from copilot.core import runs

        for run_id, view in list(self.state.runs.items()):
            if not view.is_live:
                continue
            run_dir = self.dir / RUNS_DIR / run_id
            finished = runs.read_result(run_dir)
            if finished is not None:
                self._log_finished(run_id, _scrubbed(finished, self.scrub), f"resume by {driver}")
                continue
            try:
                handle = self.runner.attach(run_dir)
                spec = runs.load_spec(run_dir)
            except SpeedcopilotError as exc:
                self.log.append(s.Error(message=f"could not re-attach to run {run_id}: {exc}", run_id=run_id))
                continue
            self._handles[run_id] = handle
            self._reattached[run_id] = f"resume by {driver}"
            self._specs[run_id] = replace(spec, cwd=self.workspace.path,
                                          timeout_s=spec.timeout_s if spec.timeout_s is not None
                                          else self.options.run_timeout_s)
            self.log.append(s.RunAttached(run_id=run_id))

    def _sync_head_with_git(self) -> None:
        head, branch = self.workspace.head_sha(), self.workspace.branch()
        if head != self.state.head or branch != self.state.branch:
            self.log.append(s.BranchSwitched(sha=head, branch=branch, reason="resumed at the workspace's HEAD"))

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
            ttt = run.time_to_target_ms
            attempts.append(
                prompts.AttemptSummary(
                    commit=run.commit[:10],
                    description=subjects.get(run.commit, ""),
                    outcome=run.status,
                    time_to_target_s=ttt / 1000 if ttt is not None else None,
                    final_val_loss=result.get("final_val_loss"),
                    error_tail=result.get("error_summary") or "\n".join(result.get("error_tail") or [])[-2000:],
                )
            )
        return attempts

    def _last_feedback(self) -> str | None:
        decided = [v for v in self.state.suggestions.values() if v.status == "decided"]
        if not decided:
            return None
        last = decided[-1]
        notes = [f"hunk {d.index + 1}: {d.feedback}" for d in last.decisions.values() if d.feedback]
        rejected = [str(d.index + 1) for d in last.decisions.values() if d.action == "reject" and not d.feedback]
        if rejected:
            notes.append(f"hunk(s) {', '.join(rejected)} rejected without comment")
        return "\n".join(notes) or None

    def _suggestion(self, suggestion_id: str) -> SuggestionView:
        view = self.state.suggestions.get(suggestion_id)
        if view is None:
            raise SpeedcopilotError(f"no suggestion {suggestion_id} in this session")
        return view

    def _hunk(self, suggestion_id: str, index: int) -> edits.Hunk:
        view = self._suggestion(suggestion_id)
        for hunk in view.hunks:
            if hunk.index == index:
                return hunk
        raise SpeedcopilotError(f"suggestion {suggestion_id} has no hunk {index}")


def commit_message(rationale: str, suggestion_id: str) -> tuple[str, str]:
    """(subject, body) of a suggestion's commit: the rationale's first sentence as the subject, cut at a word
    boundary with '…' when longer than 72 characters, and the whole rationale as the body."""
    text = " ".join(line.strip().lstrip("#*- ").strip() for line in rationale.strip().splitlines()[:3])
    text = " ".join(text.split())
    if not text:
        return f"Apply suggestion {suggestion_id}", ""
    first = text
    for end in (". ", "; ", ": "):
        cut = text.find(end)
        if end == ": " and len(text[:cut].split()) < 4:
            continue  # "Offline oracle: …" is a label, not a sentence: keep what follows it
        if 0 < cut < len(first):
            first = text[: cut + (1 if end == ". " else 0)]
    if len(first) > SUBJECT_CHARS:
        head = first[: SUBJECT_CHARS - 1]
        space = head.rfind(" ")
        first = (head[:space] if space > SUBJECT_CHARS // 2 else head).rstrip(" ,;:") + "…"
    body = rationale.strip() if rationale.strip() != first else ""
    return first, body


def resolve_session_dir(sessions_root: Path, session_id: str) -> Path:
    """Exact id, or a unique prefix of one, or a unique suffix (the short id tables show), or 'last'."""
    if not sessions_root.is_dir():
        raise SessionNotFoundError(f"no sessions folder at {sessions_root}")
    candidates = sorted(p for p in sessions_root.iterdir() if (p / EVENTS_FILE).exists())
    if session_id == "last" and candidates:
        return candidates[-1]
    exact = [p for p in candidates if p.name == session_id]
    if exact:
        return exact[0]
    matches = [p for p in candidates if p.name.startswith(session_id)] or \
        [p for p in candidates if p.name.endswith(session_id)]
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


def _prepare_workdir(track: Track, workdir: Path) -> None:
    prepare = getattr(track, "prepare_workdir", None)
    if callable(prepare):
        prepare(workdir)


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


def _scrubbed(result: Any, scrub: Scrubber) -> Any:
    if not scrub.secrets:
        return result
    return replace(result, error_tail=scrub.lines(result.error_tail),
                   error_summary=scrub(result.error_summary) if getattr(result, "error_summary", None) else
                   getattr(result, "error_summary", None))


def _rules(report: Any) -> list[str]:
    return sorted({str(getattr(f, "rule", None) or getattr(f, "kind", "")) for f in getattr(report, "findings", [])
                   if getattr(f, "severity", "") == "block"} or {"guard"})


def _blocked_message(report: Any) -> str:
    blocking = [f for f in getattr(report, "findings", []) if getattr(f, "severity", "") == "block"]
    if not blocking:
        return f"integrity guard refused this run: {report.summary()}"
    seen: dict[str, str] = {}
    for f in blocking:
        rule = getattr(f, "rule", None) or f.kind
        if rule not in seen:
            reason = getattr(f, "reason", "") or ""
            seen[rule] = f"{rule} (line {f.line}{': ' + reason if reason else ''})"
    parts = "; ".join(list(seen.values())[:3])
    more = f"; and {len(blocking) - 3} more" if len(seen) > 3 else ""
    return f"integrity guard refused this run: {parts}{more}"


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
