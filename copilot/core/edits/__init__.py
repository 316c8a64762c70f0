"""Edits: a model's answer -> hunks -> checked, all-or-nothing new files.

    verdict.py     the one entry point: evaluate_answer (a whole answer) / apply_decisions (accepted hunks)
    parse.py       which format an answer is in, and its hunks; one module per format (fmt_*.py):
                   SEARCH/REPLACE blocks, unified diff, *** Begin Patch, whole file, tool calls
    match.py       where a hunk goes: exact, whitespace-tolerant, explicit elision, bounded fuzzy; 3-way merge
    apply.py       hunks applied in order to texts and file sets, all or nothing
    validate.py    what must not land: markers, control/bidi/invisible characters, long lines, placeholders,
                   Python that no longer compiles
    paths.py       plain relative paths only; confined again where files are written
    generate.py    from two texts to blocks or hunks (oracle, whole-file answers, benchmarks)
    guard.py       integrity checks on the protected parts of a training script
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot._lazy import lazy_exports

_EXPORTS = {
    "APPLIED": "verdict",
    "EDIT_TOOLS": "fmt_tools",
    "FORMATS": "model",
    "FORMAT_LABELS": "model",
    "REJECTED": "verdict",
    "ApplyResult": "model",
    "EditApplyError": "copilot.core.errors",
    "EditLimits": "model",
    "EditParseError": "copilot.core.errors",
    "EditVerdict": "verdict",
    "GuardCheck": "verdict",
    "GuardFailure": "verdict",
    "Hunk": "model",
    "HunkApplyError": "model",
    "Match": "model",
    "ModelAnswer": "model",
    "ParsedEdits": "model",
    "ToolCall": "model",
    "apply_decisions": "verdict",
    "apply_hunks": "apply",
    "apply_to_files": "apply",
    "blocks_from_texts": "generate",
    "confine": "paths",
    "detect_format": "parse",
    "evaluate_answer": "verdict",
    "feedback_text": "verdict",
    "format_apply_error_for_model": "verdict",
    "hunk_preview": "apply",
    "hunk_span": "apply",
    "hunks_from_texts": "generate",
    "is_elision": "match",
    "parse_answer": "parse",
    "parse_edits": "parse",
    "resolve_path": "apply",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what type checkers and readers see
    from copilot.core.edits.apply import apply_hunks, apply_to_files, hunk_preview, hunk_span, resolve_path
    from copilot.core.edits.fmt_tools import EDIT_TOOLS
    from copilot.core.edits.generate import blocks_from_texts, hunks_from_texts
    from copilot.core.edits.match import is_elision
    from copilot.core.edits.model import (
        FORMAT_LABELS,
        FORMATS,
        ApplyResult,
        EditLimits,
        Hunk,
        HunkApplyError,
        Match,
        ModelAnswer,
        ParsedEdits,
        ToolCall,
    )
    from copilot.core.edits.parse import detect_format, parse_answer, parse_edits
    from copilot.core.edits.paths import confine
    from copilot.core.edits.verdict import (
        APPLIED,
        REJECTED,
        EditVerdict,
        GuardCheck,
        GuardFailure,
        apply_decisions,
        evaluate_answer,
        feedback_text,
        format_apply_error_for_model,
    )
    from copilot.core.errors import EditApplyError, EditParseError

__all__ = [
    "APPLIED", "EDIT_TOOLS", "FORMATS", "FORMAT_LABELS", "REJECTED", "ApplyResult", "EditApplyError", "EditLimits",
    "EditParseError", "EditVerdict", "GuardCheck", "GuardFailure", "Hunk", "HunkApplyError", "Match", "ModelAnswer",
    "ParsedEdits", "ToolCall", "apply_decisions", "apply_hunks", "apply_to_files", "blocks_from_texts", "confine",
    "detect_format", "evaluate_answer", "feedback_text", "format_apply_error_for_model", "hunk_preview",
    "hunk_span", "hunks_from_texts", "is_elision", "parse_answer", "parse_edits", "resolve_path",
]
