"""The `*** Begin Patch` envelope (the patch format of Codex's apply_patch tool; our own parser).

    *** Begin Patch
    *** Update File: train_gpt.py
    @@ def get_lr(it):
         context line
    -    old line
    +    new line
    *** Add File: notes.txt
    +a new file, every line prefixed with '+'
    *** End Patch

Each `@@` chunk of an Update becomes one Hunk: its context and '-' lines are the SEARCH, its context and '+'
lines the REPLACE; the text after `@@` (a line such as `def get_lr(it):`) is an anchor that breaks ties when
the chunk fits several places. Chunks come top to bottom (the format's contract, as Codex's apply_patch reads
it), so a tie also goes to the first place after the previous chunk. `*** End of File` marks a chunk that
ends at the end of the file. Deleting and moving files is refused (edit the contents instead).
"""

from __future__ import annotations

import re
from typing import Sequence

from copilot.core.edits.fmt_blocks import FENCE_RE, join_rationale
from copilot.core.edits.model import Hunk, ParsedEdits
from copilot.core.edits.paths import check_path
from copilot.core.edits.text import lines_to_text
from copilot.core.errors import EditParseError

BEGIN = "*** Begin Patch"
END = "*** End Patch"
_FILE_RE = re.compile(r"^\*\*\* (Update|Add|Delete) File:\s*(.*?)\s*$")
_MOVE_RE = re.compile(r"^\*\*\* Move to:\s*(.*?)\s*$")
_EOF = "*** End of File"

PATCH_HELP = (
    "Answer with a short rationale and one patch of this form:\n"
    "*** Begin Patch\n"
    "*** Update File: path/to/file.py\n"
    "@@ a line just above the change, e.g. def get_lr(it):\n"
    " an unchanged line (prefixed with a space)\n"
    "-a line to remove\n"
    "+a line to add\n"
    "*** End Patch"
)


def has_envelope(lines: Sequence[str]) -> bool:
    return any(line.strip() == BEGIN for line in lines)


def parse_patch(lines: list[str], default_path: str, truncated: bool = False) -> ParsedEdits:
    del default_path  # every file section names its path
    start = next(i for i, line in enumerate(lines) if line.strip() == BEGIN)
    rationale = [line for line in lines[:start] if not FENCE_RE.match(line)]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == END), None)
    dropped = 0
    if end is None:
        if not truncated:
            raise EditParseError(
                f"The patch that starts at line {start + 1} of the answer has no '{END}' line: it is cut off "
                "(was the answer truncated?). Resend the whole patch."
            )
        body = lines[start + 1 :]
        # The last chunk may be cut anywhere: drop it.
        cut = max((i for i, line in enumerate(body) if line.startswith(("@@", "*** "))), default=0)
        body, dropped = body[:cut], 1
    else:
        body = lines[start + 1 : end]
        rationale += [line for line in lines[end + 1 :] if not FENCE_RE.match(line)]
    hunks = _sections(body, start + 2)
    if not hunks:
        raise EditParseError("The patch in the model's answer changes nothing. " + PATCH_HELP)
    return ParsedEdits(rationale=join_rationale(rationale), hunks=tuple(hunks), format="patch",
                       truncated=truncated, dropped=dropped)


def _sections(body: list[str], first_line_no: int) -> list[Hunk]:
    hunks: list[Hunk] = []
    i = 0
    while i < len(body):
        line = body[i]
        number = first_line_no + i
        m = _FILE_RE.match(line)
        if not m:
            if line.strip():
                raise EditParseError(
                    f"Line {number} of the answer ({line.strip()[:60]!r}) is outside any '*** Update File:' or "
                    "'*** Add File:' section of the patch. " + PATCH_HELP
                )
            i += 1
            continue
        action, raw_path = m.group(1), m.group(2)
        path = check_path(raw_path, f"The patch section at line {number}")
        if action == "Delete":
            raise EditParseError(
                f"Line {number} of the answer deletes the file {path!r}; deleting files is not supported. "
                "Edit the file's contents instead."
            )
        i += 1
        if i < len(body) and _MOVE_RE.match(body[i]):
            raise EditParseError(
                f"Line {first_line_no + i} of the answer moves {path!r}; moving files is not supported. Edit the "
                "file in place."
            )
        section_end = next((k for k in range(i, len(body)) if _FILE_RE.match(body[k])), len(body))
        if action == "Add":
            added = [_strip_plus(text, first_line_no + k) for k, text in enumerate(body[i:section_end], start=i)]
            hunks.append(Hunk(index=len(hunks), path=path, search="", replace=lines_to_text(added), mode="create"))
        else:
            for search, replace, anchor, at_end in _chunks(body[i:section_end], first_line_no + i, path):
                hunks.append(_chunk_hunk(len(hunks), path, search, replace, anchor, at_end))
        i = section_end
    return hunks


def _strip_plus(text: str, number: int) -> str:
    if text.startswith("+"):
        return text[1:]
    raise EditParseError(
        f"Line {number} of the answer is inside an '*** Add File:' section but does not start with '+': every "
        "line of a new file is written as '+' followed by the line."
    )


def _chunks(lines: list[str], first_line_no: int, path: str) -> list[tuple[list[str], list[str], str | None, bool]]:
    chunks: list[tuple[list[str], list[str], str | None, bool]] = []
    rows: list[tuple[str, str]] = []  # (tag, text); tag "=" context, "-" removed, "+" added, "" an unprefixed blank
    anchor: str | None = None
    at_end = False
    started = False

    def close() -> None:
        while rows and rows[-1][0] == "":  # blank lines that only separate the chunk from what follows
            rows.pop()
        search = [text for tag, text in rows if tag in ("=", "-", "")]
        replace = [text for tag, text in rows if tag in ("=", "+", "")]
        if started and rows and search != replace:
            chunks.append((search, replace, anchor, at_end))

    for k, line in enumerate(lines):
        if line.startswith("@@"):
            close()
            rows, at_end, started = [], False, True
            anchor = line[2:].strip() or None
            continue
        if line.strip() == _EOF:
            at_end = True
            continue
        started = True
        if line.startswith("-"):
            rows.append(("-", line[1:]))
        elif line.startswith("+"):
            rows.append(("+", line[1:]))
        elif line.startswith(" "):
            rows.append(("=", line[1:]))
        elif line == "":
            rows.append(("", ""))
        else:
            raise EditParseError(
                f"Line {first_line_no + k} of the answer ({line[:60]!r}) in the patch for {path} starts with "
                "neither ' ', '-' nor '+'. Prefix unchanged lines with a space."
            )
    close()
    return chunks


def _chunk_hunk(index: int, path: str, search: list[str], replace: list[str], anchor: str | None,
                at_end: bool) -> Hunk:
    if any(s.strip() for s in search):
        return Hunk(index=index, path=path, search=lines_to_text(search), replace=lines_to_text(replace),
                    anchor=anchor, ordered=True)
    if anchor:  # a pure insertion right after the anchor line
        return Hunk(index=index, path=path, search="", replace=lines_to_text(replace), mode="insert_after",
                    anchor=anchor, ordered=True)
    if at_end:
        return Hunk(index=index, path=path, search="", replace=lines_to_text(replace), mode="append")
    raise EditParseError(
        f"A chunk of the patch for {path} only adds lines and has neither context lines nor an '@@ line' anchor, "
        "so there is no way to tell where they go. Add an unchanged line before the new ones (prefixed with a "
        "space), or put the line they follow after '@@'."
    )
