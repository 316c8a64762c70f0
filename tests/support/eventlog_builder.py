"""Write realistic session logs for tests, through the real EventLog writer, on a controllable clock.

    b = SessionBuilder(tmp_path / "s1", mode="copilot", record=3, record_time_s=100.0, next_record_time_s=60.0)
    sid = b.suggestion(hunks=2)                       # suggestion_requested + suggestion_received
    sha = b.commit(sid)                               # commit_created
    b.decide(sid, 0, "accept", seconds=4.0); b.decide(sid, 1, "reject", seconds=2.0)   # suggestion_decided
    b.run(sha, final_val_loss=1.27, time_to_target_ms=80_000)   # run_started, metrics, run_finished
    b.end()
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from copilot.core.edits import Hunk
from copilot.core.session import schema as s
from copilot.core.session.events import EventLog


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SessionBuilder:
    """Builds one session folder with events.jsonl written by EventLog."""

    def __init__(
        self,
        session_dir: Path,
        *,
        mode: str = "copilot",
        track: str = "micro",
        record: int = 3,
        target_val_loss: float = 1.30,
        record_time_s: float | None = 100.0,
        next_record_time_s: float | None = 60.0,
        provider: str = "oracle",
        model: str = "oracle-v1",
        hint_levels: list[int] | None = None,
        participant: str | None = None,
        study: dict[str, Any] | None = None,
        host: dict[str, Any] | None = None,
        workspace: str | None = None,
        clock: FakeClock | None = None,
        step_s: float = 1.0,
        **extra: Any,
    ) -> None:
        self.session_dir = Path(session_dir)
        self.clock = clock or FakeClock()
        self.step_s = step_s
        self.log = EventLog(self.session_dir, clock=self.clock)
        self.log.open()
        self._suggestions = 0
        self._runs = 0
        self._commits = 0
        self._pending: dict[str, list] = {}
        self._commit_of: dict[str, str] = {}
        self.target = target_val_loss
        self.emit(s.SessionStarted(
            mode=mode,
            track=track,
            record=record,
            target_val_loss=target_val_loss,
            provider=provider,
            model=model,
            hint_levels=hint_levels if hint_levels is not None else [],
            participant=participant,
            study=study,
            tool_version="0.1.0",
            host=host or {"hostname": "testhost", "platform": "Linux-6.1", "cpu": "x86_64", "python": "3.11.2"},
            record_time_s=record_time_s,
            next_record_time_s=next_record_time_s,
            session_id=self.session_dir.name,
            workspace=workspace or str(self.session_dir / "workspace"),
            **extra,
        ))

    # -- low level ----------------------------------------------------------------------------
    def emit(self, body: s.EventBody, *, after: float | None = None) -> None:
        self.clock.advance(self.step_s if after is None else after)
        self.log.append(body)

    def close(self) -> None:
        self.log.close()

    # -- co-pilot steps -----------------------------------------------------------------------
    def suggestion(
        self,
        hunks: int = 1,
        *,
        instruction: str = "make it faster",
        rationale: str = "Muon on hidden weights converges in fewer steps.",
        prompt_tokens: int = 1000,
        completion_tokens: int = 200,
        cost_usd: float = 0.01,
        latency_s: float = 3.0,
        raw_text: str | None = None,
        after: float | None = None,
    ) -> str:
        self._suggestions += 1
        sid = f"s{self._suggestions}"
        self.emit(s.SuggestionRequested(suggestion_id=sid, instruction=instruction), after=after)
        blocks = [Hunk(index=i, path="train_gpt.py", search=f"lr = {i}e-3\n", replace=f"lr = {i}e-2\n")
                  for i in range(hunks)]
        self.emit(
            s.SuggestionReceived(
                suggestion_id=sid,
                rationale=rationale,
                hunks=blocks,
                raw_text=raw_text if raw_text is not None else rationale,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost_usd=cost_usd,
                latency_s=latency_s,
                retries=0,
            ),
            after=latency_s,
        )
        self._pending[sid] = []
        return sid

    def failed_suggestion(
        self, error: str = "timeout", prompt_tokens: int = 500, completion_tokens: int = 0, cost_usd: float = 0.002
    ) -> str:
        self._suggestions += 1
        sid = f"s{self._suggestions}"
        self.emit(s.SuggestionRequested(suggestion_id=sid, instruction="again"))
        self.emit(s.SuggestionFailed(suggestion_id=sid, error=error, prompt_tokens=prompt_tokens,
                                     completion_tokens=completion_tokens, cost_usd=cost_usd))
        return sid

    def decide(
        self,
        suggestion_id: str,
        hunk_index: int,
        decision: str,
        *,
        seconds: float = 5.0,
        edited_replace: str | None = None,
        feedback: str | None = None,
        commit: str | None = None,
    ) -> None:
        """One hunk's decision; logged (with the suggestion's other decisions) as one suggestion_decided."""
        self.emit(
            s.SuggestionDecided(
                suggestion_id=suggestion_id,
                decisions=[s.HunkDecision(hunk_index, decision, edited_replace=edited_replace, feedback=feedback,
                                          decision_time_s=seconds)],
                commit=commit or self._commit_of.get(suggestion_id),
            ),
            after=seconds,
        )

    def feedback(self, suggestion_id: str, text: str) -> None:
        self.emit(s.Note(text=f"feedback on {suggestion_id}: {text}", kind="feedback"))

    def commit(
        self,
        suggestion_id: str | None = None,
        *,
        sha: str | None = None,
        parent: str | None = None,
        provenance: str = "ai",
        hunks_accepted: int = 1,
        message: str = "Apply suggestion",
    ) -> str:
        self._commits += 1
        sha = sha or f"{self._commits:040x}"
        self.emit(
            s.CommitCreated(
                sha=sha,
                parent=parent,
                branch="main",
                provenance=provenance,
                suggestion_id=suggestion_id,
                hunks_accepted=list(range(hunks_accepted)),
                message=message,
            )
        )
        if suggestion_id:
            self._commit_of[suggestion_id] = sha
        return sha

    def run(
        self,
        commit: str,
        *,
        final_val_loss: float,
        time_to_target_ms: float | None = None,
        total_steps: int = 100,
        train_time_ms: float | None = None,
        wall_time_s: float = 120.0,
        accelerator_seconds: float | None = None,
        outcome: str | None = None,
        command: list[str] | None = None,
    ) -> str:
        """run_started, four val metric lines ending at final_val_loss, run_finished."""
        self._runs += 1
        run_id = f"r{self._runs}"
        reached = time_to_target_ms is not None
        train_time_ms = train_time_ms if train_time_ms is not None else (time_to_target_ms or 100_000.0)
        self.emit(s.RunStarted(run_id=run_id, commit=commit, command=command or ["python", "train_gpt.py"],
                               runner="local", gpus=0))
        losses = [3.0, 2.0, (2.0 + final_val_loss) / 2, final_val_loss]
        for i, loss in enumerate(losses, start=1):
            self.emit(
                s.Metric(run_id=run_id, step=total_steps * i // len(losses), total_steps=total_steps,
                         val_loss=loss, train_time_ms=train_time_ms * i / len(losses)),
                after=wall_time_s / (len(losses) + 1),
            )
        self.emit(
            s.RunFinished(
                run_id=run_id,
                outcome=outcome or ("reached_target" if reached else "above_target"),
                reached_target=reached,
                time_to_target_ms=time_to_target_ms,
                final_val_loss=final_val_loss,
                best_val_loss=final_val_loss,
                train_time_ms=train_time_ms,
                wall_time_s=wall_time_s,
                exit_code=0,
                accelerator_seconds=accelerator_seconds if accelerator_seconds is not None else wall_time_s,
            ),
            after=wall_time_s / (len(losses) + 1),
        )
        return run_id

    def node(self, node_id: int, parent: int | None, commit: str, buggy: bool = False) -> None:
        self.emit(s.NodeCreated(node_id=node_id, parent=parent, commit=commit))
        if buggy:
            self.emit(s.NodeScored(node_id=node_id, buggy=True, outcome="crashed"))

    def note(self, text: str) -> None:
        self.emit(s.Note(text=text))

    def end(self, reason: str = "user_quit") -> None:
        self.emit(s.SessionEnded(reason=reason))
        self.close()


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in cwd, return stdout (raises on failure)."""
    import os

    identity = {"GIT_AUTHOR_NAME": "speedcopilot-test", "GIT_AUTHOR_EMAIL": "test@speedcopilot.invalid",
                "GIT_COMMITTER_NAME": "speedcopilot-test", "GIT_COMMITTER_EMAIL": "test@speedcopilot.invalid"}
    full_env = {**identity, **os.environ, **(env or {})}
    done = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=True)
    return done.stdout


def make_workspace(
    session_dir: Path, commits: list[tuple[dict[str, str], str, dict[str, str]]], notes: dict[int, str] | None = None
) -> list[str]:
    """Create `<session_dir>/workspace` as a git repo with one commit per (files, message, author env) entry.

    The author env (GIT_AUTHOR_NAME etc.) lets a test plant real-looking names; `notes` maps a commit index to
    a git note on refs/notes/runs (as the workspace module writes run results). Returns the commit shas.
    """
    ws = session_dir / "workspace"
    ws.mkdir(parents=True, exist_ok=True)
    git(ws, "init", "-q", "-b", "main")
    shas: list[str] = []
    for files, message, env in commits:
        for rel, text in files.items():
            (ws / rel).parent.mkdir(parents=True, exist_ok=True)
            (ws / rel).write_text(text, encoding="utf-8")
        git(ws, "add", "-A")
        git(ws, "commit", "-q", "-m", message, env=env)
        shas.append(git(ws, "rev-parse", "HEAD").strip())
    for index, text in (notes or {}).items():
        git(ws, "notes", "--ref", "refs/notes/runs", "add", "-m", text, shas[index])
    return shas
