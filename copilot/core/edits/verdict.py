"""One answer -> one verdict: the single way from a model's answer (or the hunks a human accepted) to new files.

The app, the autonomous agent, `speedcopilot edits apply` and the benchmarks all call `evaluate_answer` (a whole
answer) or `apply_decisions` (the hunks a human accepted, maybe edited). Both run the same steps — parse, apply
all-or-nothing, check what is written, confine paths to the workspace, and run the integrity guard on the
result — and never raise for a problem the model or the user caused: the verdict says what happened in plain
words. Nothing is written here; the caller commits `verdict.changed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from copilot.core.edits.apply import apply_to_files_with_matches
from copilot.core.edits.fmt_blocks import FORMAT_HELP
from copilot.core.edits.model import EditLimits, Hunk, HunkApplyError, Match, ModelAnswer, ParsedEdits
from copilot.core.edits.parse import parse_answer
from copilot.core.edits.paths import confine
from copilot.core.edits.validate import check_hunks, check_results
from copilot.core.errors import EditApplyError, EditParseError, SpeedcopilotError, WorkspaceError

APPLIED = "applied"
REJECTED = "rejected"


@dataclass(frozen=True)
class GuardCheck:
    """What the integrity guard compares: the record's script as the session started (`base`) and which file."""

    base: str
    path: str
    track: str


@dataclass(frozen=True)
class GuardFailure:
    """The guard could not run (it failed to load or crashed): the check fails closed, as a blocking report."""

    error: str
    findings: list[Any] = field(default_factory=list)
    blocking: bool = True
    notes: list[Any] = field(default_factory=list)

    def summary(self) -> str:
        return f"blocking: the integrity guard failed ({self.error}); the run is refused until it works"


@dataclass(frozen=True)
class EditVerdict:
    status: str  # "applied" | "rejected"
    format: str | None
    rationale: str
    hunks: tuple[Hunk, ...]
    files: dict[str, str]  # every file after the edit (the input files when rejected)
    changed: dict[str, str]  # created or changed files only
    matches: tuple[Match, ...] = ()
    truncated: bool = False
    dropped: int = 0  # blocks lost to the token limit
    error: str | None = None  # the one plain reason, when rejected
    error_kind: str | None = None  # parse | apply | content | compile | path
    failed_hunk: int | None = None
    guard: Any = None  # the guard's report on the result (None: not checked)

    @property
    def ok(self) -> bool:
        return self.status == APPLIED

    @property
    def blocking(self) -> bool:
        """The guard found a protected part changed (or could not check): a run needs the human's say-so."""
        return self.guard is not None and bool(self.guard.blocking)

    @property
    def auto_applicable(self) -> bool:
        """May a policy apply this without a human? Not when cut off, refused, or blocked by the guard."""
        return self.ok and not self.truncated and not self.blocking

    def feedback_for_model(self, preferred: str = "search_replace") -> str:
        """The text that goes back to the model when its answer could not be used."""
        return feedback_text(self.error or "", self.error_kind, preferred)


def _rejected(parsed: ParsedEdits | None, files: Mapping[str, str], error: Exception, kind: str) -> EditVerdict:
    return EditVerdict(
        status=REJECTED,
        format=parsed.format if parsed else None,
        rationale=parsed.rationale if parsed else "",
        hunks=parsed.hunks if parsed else (),
        files=dict(files),
        changed={},
        truncated=parsed.truncated if parsed else False,
        dropped=parsed.dropped if parsed else 0,
        error=str(error),
        error_kind=kind,
        failed_hunk=getattr(error, "hunk_index", None),
    )


def evaluate_answer(
    answer: ModelAnswer | str,
    files: Mapping[str, str],
    *,
    default_path: str,
    preferred: str = "auto",
    root: Path | None = None,
    limits: EditLimits | None = None,
    guard: GuardCheck | None = None,
) -> EditVerdict:
    """Parse a whole answer and apply every hunk (a dry run: nothing is written)."""
    try:
        parsed = parse_answer(answer, default_path, files=files, preferred=preferred)
    except EditParseError as exc:
        truncated = isinstance(answer, ModelAnswer) and answer.truncated
        verdict = _rejected(None, files, exc, "parse")
        return verdict if not truncated else _with(verdict, truncated=True)
    return _apply(parsed, parsed.hunks, files, root, limits or EditLimits(), guard)


def apply_decisions(
    files: Mapping[str, str],
    hunks: Sequence[Hunk],
    *,
    rationale: str = "",
    root: Path | None = None,
    limits: EditLimits | None = None,
    guard: GuardCheck | None = None,
) -> EditVerdict:
    """Apply the hunks a human (or policy) accepted, edited ones with their new text: the same checks."""
    parsed = ParsedEdits(rationale=rationale, hunks=tuple(hunks), format="decisions")
    return _apply(parsed, parsed.hunks, files, root, limits or EditLimits(), guard)


def _with(verdict: EditVerdict, **changes: Any) -> EditVerdict:
    from dataclasses import replace

    return replace(verdict, **changes)


def _apply(parsed: ParsedEdits, hunks: Sequence[Hunk], files: Mapping[str, str], root: Path | None,
           limits: EditLimits, guard: GuardCheck | None) -> EditVerdict:
    try:
        check_hunks(hunks, limits)
        new_files, matches = apply_to_files_with_matches(files, hunks)
        changed = {path: text for path, text in new_files.items() if files.get(path) != text}
        check_results(files, new_files, hunks, limits)
        if root is not None:
            for path in changed:
                confine(root, path)
    except HunkApplyError as exc:
        return _rejected(parsed, files, exc, exc.reason if exc.reason in ("content", "compile", "path") else "apply")
    except EditApplyError as exc:
        return _rejected(parsed, files, exc, "apply")
    except WorkspaceError as exc:
        return _rejected(parsed, files, exc, "path")
    report = run_guard(guard, new_files) if guard is not None else None
    return EditVerdict(
        status=APPLIED, format=parsed.format, rationale=parsed.rationale, hunks=tuple(hunks), files=new_files,
        changed=changed, matches=matches, truncated=parsed.truncated, dropped=parsed.dropped, guard=report,
    )


def run_guard(check: GuardCheck, files: Mapping[str, str]) -> Any:
    """The guard's report on the candidate files; a guard that fails to load or crashes fails closed."""
    try:
        from copilot.core.edits import guard as guard_module

        return guard_module.check_integrity(check.base, files.get(check.path, ""), check.track)
    except SpeedcopilotError as exc:
        return GuardFailure(str(exc))
    except Exception as exc:  # a bug in the guard must refuse the run, never wave it through
        return GuardFailure(f"{type(exc).__name__}: {exc}")


_FORMAT_REMINDERS = {
    "search_replace": (
        "Reply with corrected SEARCH/REPLACE blocks for all of your changes (including the ones that were fine). "
        "Each SEARCH must copy the current file's lines exactly — same text, same indentation, no '...' to skip "
        "lines — and match exactly one place; add neighbouring unchanged lines to make it unique."
    ),
    "udiff": (
        "Reply with a corrected unified diff of all of your changes; its context lines must copy the current "
        "file exactly and make each hunk's place unique."
    ),
    "patch": (
        "Reply with a corrected '*** Begin Patch' envelope for all of your changes; context lines (prefixed with a "
        "space) must copy the current file exactly."
    ),
    "whole": "Reply with the complete corrected file in one fenced block, every line written out.",
    "tools": (
        "Call edit_file again for all of your changes; old_string must be copied exactly from the current file "
        "and occur once."
    ),
}


def feedback_text(error: str, kind: str | None, preferred: str = "search_replace") -> str:
    lead = ("Your edit could not be applied, so none of its blocks were applied and the file is unchanged."
            if kind != "parse" else "Your answer could not be read as an edit, so nothing was applied.")
    reminder = _FORMAT_REMINDERS.get(preferred, _FORMAT_REMINDERS["search_replace"])
    if kind == "parse" and preferred == "search_replace" and FORMAT_HELP in error:
        reminder = ""  # the parse error already shows the format
    return "\n".join(part for part in (lead, "", error, "", reminder) if part is not None).rstrip()


def format_apply_error_for_model(error: EditApplyError) -> str:
    """The feedback sent back to the model when its edit did not apply (SEARCH/REPLACE wording)."""
    return feedback_text(str(error), "apply")
