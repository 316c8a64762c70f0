"""SEARCH/REPLACE blocks (the format aider popularised; our own parser).

    path/to/file.py
    ```python
    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE
    ```

The path line may sit before the fence, inside it, or in the fence's info string; a block without one edits the
file the previous block named, or the default file when no block named one. A line that looks like a path but
is not a plain relative path is an error, never prose. An empty SEARCH creates a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from copilot.core.edits.model import Hunk, ParsedEdits
from copilot.core.edits.paths import check_path, path_candidate
from copilot.core.edits.text import forbidden_char, lines_to_text
from copilot.core.errors import EditParseError

SEARCH_RE = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$", re.IGNORECASE)
DIVIDER_RE = re.compile(r"^\s*={5,9}\s*$")
REPLACE_RE = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$", re.IGNORECASE)
FENCE_RE = re.compile(r"^\s*(?:`{3,}|~{3,})\s*([^`]*?)\s*$")

FORMAT_HELP = (
    "Answer with a short rationale and one or more blocks of this form (one block per change):\n"
    "path/to/file.py\n"
    "```python\n"
    "<<<<<<< SEARCH\n"
    "lines copied exactly from the current file\n"
    "=======\n"
    "the lines that replace them\n"
    ">>>>>>> REPLACE\n"
    "```"
)


def has_markers(lines: Sequence[str]) -> bool:
    return any(SEARCH_RE.match(line) or REPLACE_RE.match(line) for line in lines)


@dataclass
class _Outside:
    text: str
    kind: str  # "text" | "fence" | "blank"
    keep: bool = True  # still part of the rationale


def parse_blocks(lines: list[str], default_path: str, truncated: bool = False) -> ParsedEdits:
    outside: list[_Outside] = []  # every line outside blocks, in order
    since_block = 0  # index into `outside` where the lines after the last block start
    hunks: list[Hunk] = []
    current_path: str | None = None
    expect_close_fence = False
    dropped = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if SEARCH_RE.match(line):
            block_no = len(hunks) + 1
            path = _claim_path(outside, since_block, f"Block {block_no}")
            if path is not None:
                current_path = path
            try:
                search, replace, i = _read_block(lines, i, block_no)
            except _CutOff as cut:
                if truncated and hunks:
                    dropped = 1
                    break
                raise EditParseError(str(cut)) from None
            mode = "create" if not search.strip() else "replace"
            hunks.append(Hunk(index=len(hunks), path=current_path or default_path,
                              search="" if mode == "create" else search, replace=replace, mode=mode))
            since_block = len(outside)
            expect_close_fence = True
            continue
        if REPLACE_RE.match(line):
            raise EditParseError(
                f"Line {i + 1} of the answer is a '>>>>>>> REPLACE' marker outside any block: block "
                f"{len(hunks) + 1} is missing its '<<<<<<< SEARCH' line (and its '=======' divider). " + FORMAT_HELP
            )
        fence = FENCE_RE.match(line)
        if not line.strip():
            outside.append(_Outside(line, "blank"))
        elif fence:
            # The first fence after a block closes the block's fence: not rationale.
            outside.append(_Outside(line, "fence", keep=not expect_close_fence))
            expect_close_fence = False
        else:
            outside.append(_Outside(line, "text"))
            expect_close_fence = False
        i += 1
    if not hunks:
        raise EditParseError("The model's answer holds no complete SEARCH/REPLACE block. " + FORMAT_HELP)
    rationale = join_rationale(entry.text for entry in outside if entry.keep)
    return ParsedEdits(rationale=rationale, hunks=tuple(hunks), format="search_replace",
                       truncated=truncated, dropped=dropped)


def _claim_path(outside: list[_Outside], since: int, where: str) -> str | None:
    """Find the path line just before a SEARCH marker (before or inside the opening fence, or in the fence's
    info string) and take it out of the rationale, together with the opening fence."""
    path: str | None = None
    fence_path: str | None = None
    seen_fence = False
    for entry in reversed([entry for entry in outside[since:] if entry.kind != "blank"][-2:]):
        if entry.kind == "fence":
            if seen_fence or not entry.keep:  # a second fence, or the closing fence of the previous block
                break
            seen_fence = True
            entry.keep = False
            info = FENCE_RE.match(entry.text)
            fence_path = _path_from_fence(info.group(1) if info else "", where)
        elif path is None and (found := path_candidate(entry.text)) is not None:
            entry.keep = False
            path = check_path(found, where)
        else:
            break
    return path or fence_path


def _path_from_fence(info: str, where: str) -> str | None:
    """A path given in a fence's info string: ```python train_gpt.py, ```python:train_gpt.py, ```train_gpt.py."""
    for part in re.split(r"[\s:]+", info.strip()):
        if part and ("." in part or "/" in part) and (found := path_candidate(part)) is not None:
            return check_path(found, where)
    return None


class _CutOff(Exception):
    """Internal: the answer ends inside a block."""


def _read_block(lines: list[str], start: int, block_no: int) -> tuple[str, str, int]:
    """Read one block starting at its SEARCH marker; return (search, replace, index after the REPLACE marker)."""
    search: list[str] = []
    replace: list[str] = []
    section = search
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if SEARCH_RE.match(line):
            where = "before its '=======' divider" if section is search else "before its '>>>>>>> REPLACE' line"
            raise EditParseError(
                f"Block {block_no} (starting at line {start + 1} of the answer) is not closed: a new "
                f"'<<<<<<< SEARCH' appears at line {i + 1}, {where}. End every block with '=======' between old "
                "and new lines and '>>>>>>> REPLACE' after the new lines."
            )
        if section is search and DIVIDER_RE.match(line):
            section = replace
        elif REPLACE_RE.match(line):
            if section is search:
                raise EditParseError(
                    f"Block {block_no} (starting at line {start + 1} of the answer) has no '=======' line between "
                    "the SEARCH lines and the REPLACE lines. Put '=======' on its own line after the old lines."
                )
            return lines_to_text(search), lines_to_text(replace), i + 1
        else:
            section.append(line)
        i += 1
    missing = "'=======' and '>>>>>>> REPLACE'" if section is search else "'>>>>>>> REPLACE'"
    raise _CutOff(
        f"Block {block_no} (starting at line {start + 1} of the answer) is cut off: the answer ends before its "
        f"{missing} line (was the answer truncated?). Resend the block complete."
    )


def join_rationale(lines: object) -> str:
    """Rationale lines joined, runs of blank lines squeezed, characters that hide text shown as <U+XXXX>."""
    text = "\n".join(lines)  # type: ignore[arg-type]
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)
    return visible(text.strip())


def visible(text: str) -> str:
    """Text with every forbidden character (bidi overrides, ANSI escapes, NULs…) replaced by a visible <U+XXXX>."""
    if all(forbidden_char(ch) is None for ch in text):
        return text
    return "".join(f"<U+{ord(ch):04X}>" if forbidden_char(ch) is not None else ch for ch in text)
