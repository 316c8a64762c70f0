"""Whole-file answers: the model sends the complete new file in a fenced block (weak and local models are far
more reliable this way). The file is diffed against the current one into hunks, so the human still reviews hunk
by hunk and the usual checks apply. A block that looks like a snippet rather than the whole file is refused:
applying a snippet as the whole file would delete everything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from copilot.core.edits.apply import resolve_path
from copilot.core.edits.fmt_blocks import join_rationale
from copilot.core.edits.generate import hunks_from_texts
from copilot.core.edits.model import Hunk, ParsedEdits
from copilot.core.edits.paths import check_path, path_candidate
from copilot.core.edits.text import lines_to_text
from copilot.core.errors import EditParseError

_OPEN_RE = re.compile(r"^\s*(`{3,}|~{3,})\s*([^`\s]*)\s*(.*?)\s*$")
MIN_WHOLE_SHARE = 0.5  # a whole file has at least this share of the current file's lines

WHOLE_HELP = (
    "Answer with a short rationale, then the complete new file: its path on one line, then the whole file in "
    "one fenced block (every line, nothing left out, no '...' placeholders)."
)


@dataclass
class FencedBlock:
    start: int  # 0-based line of the opening fence
    end: int  # 0-based line of the closing fence (len(lines) when missing)
    info: str
    body: list[str]
    path_line: int | None  # the line before the fence, when it is a path line
    path: str | None


def fenced_blocks(lines: Sequence[str]) -> list[FencedBlock]:
    """Every fenced block: a fence closes on a line of the same character, at least as long, and nothing else."""
    blocks: list[FencedBlock] = []
    i = 0
    while i < len(lines):
        m = _OPEN_RE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group(1)
        close = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((k for k in range(i + 1, len(lines)) if close.match(lines[k])), len(lines))
        info = (m.group(2) + " " + m.group(3)).strip()
        path_line, path = _path_before(lines, i, info)
        blocks.append(FencedBlock(i, end, info, list(lines[i + 1 : end]), path_line, path))
        i = end + 1
    return blocks


def _path_before(lines: Sequence[str], fence: int, info: str) -> tuple[int | None, str | None]:
    k = fence - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k >= 0 and (found := path_candidate(lines[k])) is not None:
        return k, found
    for part in re.split(r"[\s:]+", info):
        if ("." in part or "/" in part) and (found := path_candidate(part)) is not None:
            return None, found
    return None, None


def looks_like_whole_file(block: FencedBlock, current: str | None) -> bool:
    if current is None:
        return block.path is not None and bool(block.body)
    old = [line.strip() for line in current.splitlines() if line.strip()]
    new = [line.strip() for line in block.body if line.strip()]
    if not old or not new:
        return False
    shared = len(set(old) & set(new)) / len(set(old))
    same_edges = new[0] == old[0] or new[-1] == old[-1]
    return len(new) >= MIN_WHOLE_SHARE * len(old) and (shared >= MIN_WHOLE_SHARE or same_edges)


def whole_file_blocks(lines: Sequence[str], default_path: str,
                      files: Mapping[str, str]) -> list[tuple[FencedBlock, str]]:
    """The fenced blocks that are whole files, each with the path it replaces."""
    chosen: list[tuple[FencedBlock, str]] = []
    for block in fenced_blocks(lines):
        where = f"The fenced block at line {block.start + 1}"
        path = check_path(block.path, where) if block.path is not None else default_path
        path = resolve_path(path, files) or path
        if looks_like_whole_file(block, files.get(path)):
            chosen.append((block, path))
    return chosen


def parse_whole(lines: list[str], default_path: str, files: Mapping[str, str], truncated: bool = False,
                explicit: bool = False) -> ParsedEdits:
    if truncated:
        raise EditParseError(
            "The answer was cut off by the token limit, so the whole file it sends is incomplete. Ask again with a "
            "larger output limit, or use SEARCH/REPLACE blocks for a long file."
        )
    chosen = whole_file_blocks(lines, default_path, files)
    if not chosen:
        blocks = fenced_blocks(lines)
        if explicit and blocks:
            biggest = max(blocks, key=lambda b: len(b.body))
            current = files.get(default_path, "")
            raise EditParseError(
                f"The fenced block at line {biggest.start + 1} holds {len(biggest.body)} lines but {default_path} "
                f"has {current.count(chr(10))}: it looks like a snippet, not the whole file, and applying it as the "
                "file would delete the rest. " + WHOLE_HELP
            )
        raise EditParseError("The model's answer holds no edit: no blocks, no diff and no whole file. " + WHOLE_HELP)
    hunks: list[Hunk] = []
    used: set[int] = set()
    for block, path in chosen:
        if block.end >= len(lines):
            raise EditParseError(
                f"The whole file for {path} (from line {block.start + 1}) has no closing fence: it is cut off. "
                + WHOLE_HELP
            )
        new_text = lines_to_text(block.body)
        hunks.extend(hunks_from_texts(files.get(path, ""), new_text, path, first_index=len(hunks)))
        used.update(range(block.start, block.end + 1))
        if block.path_line is not None:
            used.add(block.path_line)
    if not hunks:
        raise EditParseError("The whole file in the answer is the same as the current one: there is nothing to apply.")
    rationale = join_rationale(line for n, line in enumerate(lines) if n not in used)
    return ParsedEdits(rationale=rationale, hunks=tuple(hunks), format="whole")
