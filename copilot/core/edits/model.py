"""The data of the edit engine: hunks, parsed answers, matches, limits, and the errors that name a hunk."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from copilot.core.errors import EditApplyError

FORMATS = ("search_replace", "udiff", "whole", "patch", "tools")
FORMAT_LABELS = {
    "search_replace": "SEARCH/REPLACE blocks",
    "udiff": "a unified diff",
    "whole": "the whole file",
    "patch": "a *** Begin Patch envelope",
    "tools": "edit tool calls",
}

_SMALL_MODEL = re.compile(r"(?:^|[-_:/.])(?:0\.5|1\.5|[1-9]|1[0-4])b(?:$|[-_:/.])")


def default_edit_format(model: str) -> str:
    """The format to ask a model for when the config does not say: Codex-style patches for the models trained
    on them, whole files for small local models (far more reliable than blocks for them), SEARCH/REPLACE
    blocks otherwise."""
    name = model.lower().rsplit("/", 1)[-1]
    if "codex" in name or name.startswith("gpt-5"):
        return "patch"
    if _SMALL_MODEL.search(name):
        return "whole"
    return "search_replace"


# How a hunk places its lines: "replace" finds SEARCH and swaps it for REPLACE; "create" writes a new file
# (SEARCH empty, the file must not exist); "append" adds REPLACE at the end of an existing file; "insert_after"
# adds REPLACE after the one line equal to `anchor`. Only explicit forms produce the last three: a blank SEARCH
# never means "somewhere at the end".
HUNK_MODES = ("replace", "create", "append", "insert_after")


@dataclass(frozen=True)
class Hunk:
    index: int  # 0-based position in the suggestion
    path: str  # file the hunk edits (the default path only when the block named none)
    search: str  # text to find ('' for create / append)
    replace: str  # replacement text
    mode: str = "replace"
    anchor: str | None = None  # a line the hunk comes after (patch format '@@ def f'); breaks ties only
    ordered: bool = False  # the format applies hunks top to bottom (patch): ties go to the first after the last
    line_hint: int | None = None  # 1-based line where SEARCH starts once the earlier hunks applied (diff
    #                               headers); used only when the lines there are exactly SEARCH
    exact: bool = False  # SEARCH is a byte-exact copy (tool semantics): one exact match beats whitespace rivals

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "path": self.path, "search": self.search,
                                "replace": self.replace}
        if self.mode != "replace":
            data["mode"] = self.mode
        if self.anchor:
            data["anchor"] = self.anchor
        if self.ordered:
            data["ordered"] = True
        if self.line_hint is not None:
            data["line_hint"] = self.line_hint
        if self.exact:
            data["exact"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Hunk":
        mode = str(data.get("mode") or ("create" if not data.get("search") else "replace"))
        hint = data.get("line_hint")
        return cls(index=int(data["index"]), path=str(data["path"]), search=str(data.get("search") or ""),
                   replace=str(data.get("replace") or ""), mode=mode, anchor=data.get("anchor"),
                   ordered=bool(data.get("ordered", False)), line_hint=int(hint) if hint is not None else None,
                   exact=bool(data.get("exact", False)))


@dataclass(frozen=True)
class ParsedEdits:
    rationale: str
    hunks: tuple[Hunk, ...]
    format: str = "search_replace"
    truncated: bool = False  # the answer was cut off by the token limit; complete blocks only
    dropped: int = 0  # blocks lost to the cut


@dataclass(frozen=True)
class Match:
    """Where a hunk applied. For "create"/"append", start_line is one past the last line and end_line =
    start_line - 1 (an empty range). similarity: 1.0 for exact, whitespace, create and append matches; for fuzzy
    ones the (line-aware) difflib ratio, or, when SEARCH skipped lines with '...', the share of the window's
    lines that SEARCH gave."""

    hunk_index: int
    kind: str  # "exact" | "whitespace" | "fuzzy" | "create" | "append" | "insert_after"
    start_line: int  # 1-based, in the text the hunk was applied to
    end_line: int
    similarity: float


@dataclass(frozen=True)
class ApplyResult:
    text: str
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class EditLimits:
    """What an answer may write (configurable: edit_max_line_chars)."""

    max_line_chars: int = 1000
    compile_python: bool = True


class HunkApplyError(EditApplyError):
    """An `EditApplyError` that knows which hunk failed, why, and the file lines nearest to what was searched.

    reason: "not_found" | "ambiguous" | "conflict" | "elision" | "stale_after" | "missing_file" | "reindent" |
            "exists" | "content" | "path" | "compile"
    nearest: (1-based line number, text) pairs of the file lines closest to the SEARCH text (may be empty).
    """

    def __init__(
        self,
        message: str,
        *,
        hunk_index: int | None,
        path: str,
        reason: str,
        nearest: tuple[tuple[int, str], ...] = (),
        hint: str = "",
    ) -> None:
        super().__init__(message)
        self.hunk_index = hunk_index
        self.path = path
        self.reason = reason
        self.nearest = nearest
        self.hint = hint


@dataclass(frozen=True)
class ToolCall:
    """One tool call of a model answer (OpenAI function calling): the function name and its JSON arguments."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class ModelAnswer:
    """What a model sent: its text, its tool calls, and why it stopped ("stop", "length", "tool_calls", …)."""

    text: str
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)
    finish_reason: str | None = "stop"

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"
