"""From a model's answer (any supported format) to hunks.

Formats: SEARCH/REPLACE blocks, a unified diff, the `*** Begin Patch` envelope, the whole file, and tool calls.
The answer's own shape decides (a model asked for one format sometimes answers in another); the configured
format only decides what a bare fenced block means ("whole": the whole file; otherwise a snippet, no edit).
"""

from __future__ import annotations

from typing import Mapping

from copilot.core.edits.fmt_blocks import FORMAT_HELP, has_markers, parse_blocks
from copilot.core.edits.fmt_patch import has_envelope, parse_patch
from copilot.core.edits.fmt_tools import parse_tool_calls
from copilot.core.edits.fmt_udiff import looks_like_unified_diff, parse_unified_diff
from copilot.core.edits.fmt_whole import parse_whole, whole_file_blocks
from copilot.core.edits.model import FORMATS, ModelAnswer, ParsedEdits
from copilot.core.edits.text import split_plain_lines
from copilot.core.errors import EditParseError


def detect_format(answer: ModelAnswer, files: Mapping[str, str] | None = None, default_path: str = "",
                  preferred: str = "auto") -> str | None:
    """The format an answer is written in, or None when it holds no edit at all."""
    if answer.tool_calls:
        return "tools"
    lines = split_plain_lines(answer.text or "")
    if has_envelope(lines):
        return "patch"
    if has_markers(lines):
        return "search_replace"
    if looks_like_unified_diff(lines):
        return "udiff"
    if preferred == "whole":
        return "whole"
    if files is not None and whole_file_blocks(lines, default_path, files):
        return "whole"
    return None


def parse_answer(
    answer: ModelAnswer | str,
    default_path: str,
    *,
    files: Mapping[str, str] | None = None,
    preferred: str = "auto",
) -> ParsedEdits:
    """Split an answer into rationale and hunks. Raises EditParseError (which block, why, how to fix it).

    `files` (path -> current text) is needed for whole-file answers and for tool edits that replace substrings.
    An answer cut off by the token limit (finish_reason "length") keeps its complete blocks and is marked
    truncated; the block the cut went through is dropped.
    """
    if isinstance(answer, str):
        answer = ModelAnswer(answer)
    if preferred not in ("auto", *FORMATS):
        raise EditParseError(f"unknown edit format {preferred!r}; choose one of: auto, {', '.join(FORMATS)}")
    truncated = answer.truncated
    if not answer.tool_calls and (answer.text is None or not answer.text.strip()):
        cut = " (it was cut off by the token limit before any text)" if truncated else ""
        raise EditParseError(f"The model's answer is empty{cut}: it holds no edit blocks. " + FORMAT_HELP)
    fmt = detect_format(answer, files, default_path, preferred)
    current = dict(files or {})
    lines = split_plain_lines(answer.text or "")
    if fmt == "tools":
        return parse_tool_calls(answer.tool_calls, answer.text or "", default_path, current, truncated)
    if fmt == "patch":
        return parse_patch(lines, default_path, truncated)
    if fmt == "search_replace":
        return parse_blocks(lines, default_path, truncated)
    if fmt == "udiff":
        return parse_unified_diff(lines, default_path, truncated)
    if fmt == "whole":
        return parse_whole(lines, default_path, current, truncated, explicit=preferred == "whole")
    cut = " It was cut off by the token limit." if truncated else ""
    raise EditParseError(
        "The model's answer holds no SEARCH/REPLACE blocks, no diff, no patch and no whole file, so there is "
        f"nothing to apply.{cut} " + FORMAT_HELP
    )


def parse_edits(text: str, default_path: str) -> ParsedEdits:
    """parse_answer for a plain text answer (the SEARCH/REPLACE, diff and patch formats need no files)."""
    return parse_answer(text, default_path)
