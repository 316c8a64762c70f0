"""Unified diffs (`--- a/x` / `+++ b/x` / `@@ -l,n +l,n @@`): each @@ hunk becomes one Hunk.

Line numbers in the @@ headers are not trusted (models miscount); the hunk is placed by its context like a
SEARCH/REPLACE block, and the header's new-side line only settles a tie when the lines there are exactly the
hunk's (a real diff's numbers are right). A hunk without context lines can only create a file (`--- /dev/null`).
"""

from __future__ import annotations

import re
from typing import Sequence

from copilot.core.edits.fmt_blocks import FENCE_RE, FORMAT_HELP, join_rationale
from copilot.core.edits.model import Hunk, ParsedEdits
from copilot.core.edits.paths import check_path
from copilot.core.edits.text import lines_to_text
from copilot.core.errors import EditParseError

HUNK_HEADER_RE = re.compile(r"^@@\s*-(\d+)(?:,(\d+))?\s+\+(\d+)(?:,(\d+))?\s*@@.*$")
_LOOSE_HUNK_HEADER_RE = re.compile(r"^@@.*@@.*$|^@@\s*$")
_DIFF_NOISE_RE = re.compile(
    r"^(diff --git |index [0-9a-f]|new file mode |deleted file mode |old mode |new mode |similarity index |"
    r"rename from |rename to |Binary files )"
)


def looks_like_unified_diff(lines: Sequence[str]) -> bool:
    return any(HUNK_HEADER_RE.match(line) or _LOOSE_HUNK_HEADER_RE.match(line) for line in lines)


def _header_path(raw: str, where: str) -> str:
    path = raw.split("\t", 1)[0].strip()
    if path.startswith(("a/", "b/")):
        path = path[2:]
    return check_path(path, where)


def parse_unified_diff(lines: list[str], default_path: str, truncated: bool = False) -> ParsedEdits:
    rationale: list[str] = []
    hunks: list[Hunk] = []
    path = default_path
    creating = False  # the current file header is --- /dev/null
    dropped = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = lines[i][4:].strip(), lines[i + 1][4:].strip()
            creating = old.split("\t", 1)[0] == "/dev/null"
            if new.split("\t", 1)[0] == "/dev/null":
                raise EditParseError(
                    f"Line {i + 2} of the answer deletes the file {old.split(chr(9), 1)[0]!r}; deleting files is "
                    "not supported. Edit the file's contents instead."
                )
            path = _header_path(new, f"The diff header at line {i + 2}")
            i += 2
            continue
        if HUNK_HEADER_RE.match(line) or _LOOSE_HUNK_HEADER_RE.match(line):
            header = HUNK_HEADER_RE.match(line)
            body, i = _read_diff_hunk(lines, i + 1)
            if truncated and i >= len(lines) and header is not None and _short(body, header):
                dropped += 1
                break
            search = [text for tag, text in body if tag in " -"]
            replace = [text for tag, text in body if tag in " +"]
            if not any(tag in "+-" for tag, _ in body):
                continue  # a hunk without changes is a no-op
            blank_context = bool(search) and header is not None and not creating
            if not any(s.strip() for s in search) and not blank_context:
                if not creating:
                    raise EditParseError(
                        f"Diff hunk {len(hunks) + 1} ({line.strip()}) only adds lines and has no context lines, so "
                        "there is no way to tell where they go. Include at least one unchanged line around the "
                        "addition (lines starting with a space)."
                    )
                hunks.append(Hunk(index=len(hunks), path=path, search="", replace=lines_to_text(replace),
                                  mode="create"))
                continue
            hint = int(header.group(3)) if header is not None else None
            hunks.append(Hunk(index=len(hunks), path=path, search=lines_to_text(search),
                              replace=lines_to_text(replace), line_hint=hint))
            continue
        if not (_DIFF_NOISE_RE.match(line) or FENCE_RE.match(line)):
            rationale.append(line)
        i += 1
    if not hunks:
        raise EditParseError("The unified diff in the model's answer holds no changed lines. " + FORMAT_HELP)
    return ParsedEdits(rationale=join_rationale(rationale), hunks=tuple(hunks), format="udiff",
                       truncated=truncated, dropped=dropped)


def _short(body: list[tuple[str, str]], header: re.Match[str]) -> bool:
    """The hunk has fewer lines than its header promises (the answer was cut inside it)."""
    old_count = int(header.group(2)) if header.group(2) is not None else 1
    new_count = int(header.group(4)) if header.group(4) is not None else 1
    old = sum(1 for tag, _ in body if tag in " -")
    new = sum(1 for tag, _ in body if tag in " +")
    return old < old_count or new < new_count


def _read_diff_hunk(lines: list[str], i: int) -> tuple[list[tuple[str, str]], int]:
    body: list[tuple[str, str]] = []
    while i < len(lines):
        line = lines[i]
        if HUNK_HEADER_RE.match(line) or _LOOSE_HUNK_HEADER_RE.match(line):
            break
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            break
        if line == "":
            body.append((" ", ""))  # models often drop the space of an empty context line
        elif line[0] in " +-":
            body.append((line[0], line[1:]))
        elif line.startswith("\\"):
            pass  # "\ No newline at end of file"
        else:
            break
        i += 1
    # Trailing empty lines most likely separate the diff from the text after it.
    while body and body[-1] == (" ", ""):
        body.pop()
        i -= 1
    return body, i
