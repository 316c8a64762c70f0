"""Edits: model text → hunks → tolerant, all-or-nothing apply.

The model answers with a short rationale and SEARCH/REPLACE blocks::

    path/to/file.py
    ```python
    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE
    ```

A unified diff is accepted as input too. Every block (or diff hunk) becomes one `Hunk` the human can accept,
reject or edit.

Applying a hunk tries, in order: an exact match; a whitespace-tolerant match (trailing whitespace, CRLF vs LF,
a uniform indentation shift — the replacement is re-indented by the same shift, blank lines at the edges of
SEARCH); SEARCH with `...` elision lines, where every part must still match unambiguously; and a bounded fuzzy
match. Non-exact matches are merged three-way (SEARCH is the base, the file's window is "theirs", REPLACE is
"ours"): lines the model left alone keep the file's actual text, and if the file differs from SEARCH on a line
the model changes, the hunk is refused. A missing or ambiguous match is an `EditApplyError` naming the nearest
lines, so the model can be told how to fix it. When unsure, fail: never apply in the wrong place.

Line numbers in `Match` and in errors are 1-based. Block numbers in messages are 1-based too (block 1 is the
hunk with index 0), because they are read by people and models.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

from copilot.core.errors import EditApplyError, EditParseError

__all__ = [
    "ApplyResult",
    "Hunk",
    "HunkApplyError",
    "Match",
    "ParsedEdits",
    "apply_hunks",
    "apply_to_files",
    "blocks_from_texts",
    "format_apply_error_for_model",
    "hunk_preview",
    "parse_edits",
]

FUZZY_THRESHOLD = 0.9
# Fuzzy matching evaluates at most this many candidate windows; more candidates than that means the SEARCH
# text is too generic to place with confidence.
FUZZY_MAX_WINDOWS = 400
ELISION_MAX_CHAINS = 32  # ways to place the parts of a SEARCH with '...' lines that are compared at most
FUZZY_MIN_LINES = 2  # non-blank SEARCH lines needed before a fuzzy match is tried


# ---------------------------------------------------------------------------------------------------------
# Public data


@dataclass(frozen=True)
class Hunk:
    index: int  # 0-based position in the suggestion
    path: str  # file the hunk edits (default_path if the model gave none)
    search: str  # text to find ('' = append)
    replace: str  # replacement text


@dataclass(frozen=True)
class ParsedEdits:
    rationale: str
    hunks: tuple[Hunk, ...]


@dataclass(frozen=True)
class Match:
    """Where a hunk applied. For kind "append", start_line is one past the last line and end_line = start_line - 1
    (an empty range). similarity: 1.0 for exact, whitespace and append matches; for fuzzy ones the (line-aware)
    difflib ratio, or, when SEARCH skipped lines with '...', the share of the window's lines that SEARCH gave."""

    hunk_index: int
    kind: str  # "exact" | "whitespace" | "fuzzy" | "append"
    start_line: int  # 1-based, in the text the hunk was applied to
    end_line: int
    similarity: float


@dataclass(frozen=True)
class ApplyResult:
    text: str
    matches: tuple[Match, ...]


class HunkApplyError(EditApplyError):
    """An `EditApplyError` that knows which hunk failed, why, and the file lines nearest to what was searched.

    reason: "not_found" | "ambiguous" | "conflict" | "elision" | "stale_after" | "missing_file" | "reindent"
    nearest: (1-based line number, text) pairs of the file lines closest to the SEARCH text (may be empty).
    """

    def __init__(
        self,
        message: str,
        *,
        hunk_index: int,
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


# ---------------------------------------------------------------------------------------------------------
# Parsing

_SEARCH_RE = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$", re.IGNORECASE)
_DIVIDER_RE = re.compile(r"^\s*={5,9}\s*$")
_REPLACE_RE = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$", re.IGNORECASE)
_FENCE_RE = re.compile(r"^\s*(?:`{3,}|~{3,})\s*([^`]*?)\s*$")
_HUNK_HEADER_RE = re.compile(r"^@@\s*-(\d+)(?:,(\d+))?\s+\+(\d+)(?:,(\d+))?\s*@@.*$")
_LOOSE_HUNK_HEADER_RE = re.compile(r"^@@.*@@.*$|^@@\s*$")
_PATH_PREFIX_RE = re.compile(r"^(?:file(?:name)?|path)\s*:\s*", re.IGNORECASE)
_PATH_TOKEN_RE = re.compile(r"^[\w.\-/\\]+$")
_DIFF_NOISE_RE = re.compile(
    r"^(diff --git |index [0-9a-f]|new file mode |deleted file mode |old mode |new mode |similarity index |"
    r"rename from |rename to |Binary files )"
)

_FORMAT_HELP = (
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


def parse_edits(text: str, default_path: str) -> ParsedEdits:
    """Split a model answer into rationale and hunks (SEARCH/REPLACE blocks, or a unified diff).

    Raises EditParseError when the answer is empty, holds no blocks, or holds a malformed block; the message
    says which block and how to fix it.
    """
    if text is None or not text.strip():
        raise EditParseError("The model's answer is empty: it holds no edit blocks. " + _FORMAT_HELP)
    lines = _split_plain_lines(text)
    if any(_SEARCH_RE.match(line) or _REPLACE_RE.match(line) for line in lines):
        return _parse_blocks(lines, default_path)
    if _looks_like_unified_diff(lines):
        return _parse_unified_diff(lines, default_path)
    raise EditParseError(
        "The model's answer holds no SEARCH/REPLACE blocks and no unified diff, so there is nothing to apply. "
        + _FORMAT_HELP
    )


def _split_plain_lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


def _lines_to_text(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _clean_path(raw: str) -> str:
    path = raw.strip().strip("`'\"").replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _path_from_line(line: str, default_path: str) -> str | None:
    """The file path a line names, if the whole line is a path (possibly decorated with markdown)."""
    token = line.strip()
    token = re.sub(r"^#{1,6}\s+", "", token)  # markdown heading
    token = token.strip("*_` ")
    token = _PATH_PREFIX_RE.sub("", token)
    token = token.strip("*_`'\" ").rstrip(":").strip("*_`'\" ")
    if not token or len(token) > 200 or not _PATH_TOKEN_RE.match(token) or not re.search(r"\w", token):
        return None
    cleaned = _clean_path(token)
    base = default_path.replace("\\", "/").rsplit("/", 1)[-1]
    if cleaned in (_clean_path(default_path), base):
        return cleaned
    if re.search(r"\.[A-Za-z0-9_]{1,8}$", cleaned) or "/" in cleaned:
        return cleaned
    return None


def _path_from_fence(info: str, default_path: str) -> str | None:
    """A path given in a fence's info string: ```python train_gpt.py, ```python:train_gpt.py, ```train_gpt.py."""
    for part in re.split(r"[\s:]+", info.strip()):
        if part and ("." in part or "/" in part):
            found = _path_from_line(part, default_path)
            if found:
                return found
    return None


@dataclass
class _Outside:
    text: str
    kind: str  # "text" | "fence" | "blank"
    keep: bool = True  # still part of the rationale


def _parse_blocks(lines: list[str], default_path: str) -> ParsedEdits:
    outside: list[_Outside] = []  # every line outside blocks, in order
    since_block = 0  # index into `outside` where the lines after the last block start
    hunks: list[Hunk] = []
    current_path: str | None = None
    expect_close_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _SEARCH_RE.match(line):
            path = _claim_path(outside, since_block, default_path)
            if path is not None:
                current_path = path
            block_no = len(hunks) + 1
            search, replace, i = _read_block(lines, i, block_no)
            hunks.append(
                Hunk(index=len(hunks), path=current_path or default_path, search=search, replace=replace)
            )
            since_block = len(outside)
            expect_close_fence = True
            continue
        if _REPLACE_RE.match(line):
            raise EditParseError(
                f"Line {i + 1} of the answer is a '>>>>>>> REPLACE' marker outside any block: block "
                f"{len(hunks) + 1} is missing its '<<<<<<< SEARCH' line (and its '=======' divider). " + _FORMAT_HELP
            )
        fence = _FENCE_RE.match(line)
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
        raise EditParseError("The model's answer holds no complete SEARCH/REPLACE block. " + _FORMAT_HELP)
    rationale = _join_rationale(entry.text for entry in outside if entry.keep)
    return ParsedEdits(rationale=rationale, hunks=tuple(hunks))


def _claim_path(outside: list[_Outside], since: int, default_path: str) -> str | None:
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
            info = _FENCE_RE.match(entry.text)
            fence_path = _path_from_fence(info.group(1) if info else "", default_path)
        elif path is None and (found := _path_from_line(entry.text, default_path)) is not None:
            entry.keep = False
            path = found
        else:
            break
    return path or fence_path


def _read_block(lines: list[str], start: int, block_no: int) -> tuple[str, str, int]:
    """Read one block starting at its SEARCH marker; return (search, replace, index after the REPLACE marker)."""
    search: list[str] = []
    replace: list[str] = []
    section = search
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if _SEARCH_RE.match(line):
            where = "before its '=======' divider" if section is search else "before its '>>>>>>> REPLACE' line"
            raise EditParseError(
                f"Block {block_no} (starting at line {start + 1} of the answer) is not closed: a new "
                f"'<<<<<<< SEARCH' appears at line {i + 1}, {where}. End every block with '=======' between old "
                "and new lines and '>>>>>>> REPLACE' after the new lines."
            )
        if section is search and _DIVIDER_RE.match(line):
            section = replace
        elif _REPLACE_RE.match(line):
            if section is search:
                raise EditParseError(
                    f"Block {block_no} (starting at line {start + 1} of the answer) has no '=======' line between "
                    "the SEARCH lines and the REPLACE lines. Put '=======' on its own line after the old lines."
                )
            search_text = "" if all(not s.strip() for s in search) else _lines_to_text(search)
            return search_text, _lines_to_text(replace), i + 1
        else:
            section.append(line)
        i += 1
    missing = "'=======' and '>>>>>>> REPLACE'" if section is search else "'>>>>>>> REPLACE'"
    raise EditParseError(
        f"Block {block_no} (starting at line {start + 1} of the answer) is cut off: the answer ends before its "
        f"{missing} line (was the answer truncated?). Resend the block complete."
    )


def _join_rationale(lines: Sequence[str] | object) -> str:
    text = "\n".join(lines)  # type: ignore[arg-type]
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)
    return text.strip()


def _looks_like_unified_diff(lines: list[str]) -> bool:
    return any(_HUNK_HEADER_RE.match(line) or _LOOSE_HUNK_HEADER_RE.match(line) for line in lines)


def _diff_path(raw: str) -> str:
    path = raw.split("\t", 1)[0].strip()
    if path.startswith(("a/", "b/")):
        path = path[2:]
    return _clean_path(path)


def _parse_unified_diff(lines: list[str], default_path: str) -> ParsedEdits:
    rationale: list[str] = []
    hunks: list[Hunk] = []
    path = default_path
    creating = False  # the current file header is --- /dev/null
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = lines[i][4:].strip(), lines[i + 1][4:].strip()
            creating = old.split("\t", 1)[0] == "/dev/null"
            if new.split("\t", 1)[0] == "/dev/null":
                raise EditParseError(
                    f"Line {i + 2} of the answer deletes the file {_diff_path(old)!r}; deleting files is not "
                    "supported. Edit the file's contents instead."
                )
            path = _diff_path(new)
            i += 2
            continue
        if _HUNK_HEADER_RE.match(line) or _LOOSE_HUNK_HEADER_RE.match(line):
            header = _HUNK_HEADER_RE.match(line)
            body, i = _read_diff_hunk(lines, i + 1)
            search = [text for tag, text in body if tag in " -"]
            replace = [text for tag, text in body if tag in " +"]
            if not any(tag in "+-" for tag, _ in body):
                continue  # a hunk without changes is a no-op
            if not any(s.strip() for s in search):
                old_start = int(header.group(1)) if header else -1
                if not (creating or old_start == 0):
                    raise EditParseError(
                        f"Diff hunk {len(hunks) + 1} ({line.strip()}) only adds lines and has no context lines, so "
                        "there is no way to tell where they go. Include at least one unchanged line around the "
                        "addition (lines starting with a space)."
                    )
                search = []
            hunks.append(
                Hunk(index=len(hunks), path=path, search=_lines_to_text(search) if search else "",
                     replace=_lines_to_text(replace))
            )
            continue
        if not (_DIFF_NOISE_RE.match(line) or _FENCE_RE.match(line)):
            rationale.append(line)
        i += 1
    if not hunks:
        raise EditParseError("The unified diff in the model's answer holds no changed lines. " + _FORMAT_HELP)
    return ParsedEdits(rationale=_join_rationale(rationale), hunks=tuple(hunks))


def _read_diff_hunk(lines: list[str], i: int) -> tuple[list[tuple[str, str]], int]:
    body: list[tuple[str, str]] = []
    while i < len(lines):
        line = lines[i]
        if _HUNK_HEADER_RE.match(line) or _LOOSE_HUNK_HEADER_RE.match(line):
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


# ---------------------------------------------------------------------------------------------------------
# Text as lines with their own line endings


@dataclass
class _Doc:
    lines: list[str]  # content without the line ending
    eols: list[str]  # "\n", "\r\n" or "" (last line without a newline)

    @classmethod
    def from_text(cls, text: str) -> _Doc:
        # Only \n ends a line (str.splitlines would also split at form feeds and lone \r).
        pieces = text.split("\n")
        lines: list[str] = []
        eols: list[str] = []
        for piece in pieces[:-1]:
            if piece.endswith("\r"):
                lines.append(piece[:-1])
                eols.append("\r\n")
            else:
                lines.append(piece)
                eols.append("\n")
        if pieces[-1]:
            lines.append(pieces[-1])
            eols.append("")
        return cls(lines, eols)

    def text(self) -> str:
        return "".join(line + eol for line, eol in zip(self.lines, self.eols))

    def dominant_eol(self) -> str:
        counts = Counter(e for e in self.eols if e)
        return "\r\n" if counts["\r\n"] > counts["\n"] else "\n"


def _hunk_lines(text: str) -> list[str]:
    if not text:
        return []
    return _split_plain_lines(text)


# An output line: its text and its line ending (None = the file's dominant ending).
_OutLine = tuple[str, "str | None"]


@dataclass
class _Plan:
    start: int  # 0-based window [start, end) in the lines the hunk applies to
    end: int
    out: list[_OutLine]
    kind: str
    similarity: float


class _Refusal(Exception):
    """Internal: a tier found the place but refuses to apply there (conflict, bad re-indent)."""

    def __init__(self, reason: str, message: str, nearest: tuple[tuple[int, str], ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.nearest = nearest


# ---------------------------------------------------------------------------------------------------------
# Indentation shifts and the three-way merge

# (sign, prefix): sign 0 = no shift, +1 = the file has `prefix` more indentation than SEARCH, -1 = less.
_Shift = tuple[int, str]
_NO_SHIFT: _Shift = (0, "")


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _shift_between(model_line: str, file_line: str) -> _Shift | None:
    ml, fl = _lead(model_line), _lead(file_line)
    if ml == fl:
        return _NO_SHIFT
    if fl.endswith(ml):
        return (1, fl[: len(fl) - len(ml)])
    if ml.endswith(fl):
        return (-1, ml[: len(ml) - len(fl)])
    return None


def _apply_shift(line: str, shift: _Shift) -> str | None:
    """The model's line in the file's indentation; None when it cannot be (less indented than the shift)."""
    sign, prefix = shift
    if sign == 0 or not line.strip():
        return line
    if sign > 0:
        return prefix + line
    if line.startswith(prefix):
        return line[len(prefix) :]
    return None


def _mode_shift(pairs: Sequence[tuple[str, str]]) -> _Shift:
    shifts = Counter(
        s for s in (_shift_between(m, f) for m, f in pairs if m.strip() and f.strip()) if s is not None
    )
    return shifts.most_common(1)[0][0] if shifts else _NO_SHIFT


@dataclass
class _MergeInput:
    search: list[str]
    window: list[str]
    window_eols: list[str]
    replace: list[str]
    shift: _Shift
    window_start: int  # 0-based line number of window[0], for messages


def _merge(m: _MergeInput) -> list[_OutLine]:
    """Three-way merge: base SEARCH, the file's window, the model's REPLACE. Raises _Refusal on a conflict."""
    S, W, R, shift = m.search, m.window, m.replace, m.shift
    s_as_file = [_as_file_key(s, shift) for s in S]
    w_keys = [w.rstrip() for w in W]
    s_keys = [s.rstrip() for s in S]
    r_keys = [r.rstrip() for r in R]
    map_w = _line_map(s_as_file, w_keys, pair_replacements=True)
    map_r = _line_map(s_keys, r_keys)
    # The model's own drift: SEARCH lines with trailing whitespace the file does not have.
    strip_new = any(
        S[i].strip() and S[i] != S[i].rstrip() and W[j] == W[j].rstrip() and s_as_file[i] == w_keys[j]
        for i, j in map_w.items()
    )

    def transform(r: str) -> str:
        if strip_new:
            r = r.rstrip()
        shifted = _apply_shift(r, shift)
        if shifted is None:
            raise _Refusal(
                "reindent",
                f"the REPLACE line {r!r} is less indented than the indentation shift between the SEARCH text and "
                "the file, so it cannot be re-indented safely",
            )
        return shifted

    out: list[_OutLine] = []
    i = j = k = 0
    stable = [x for x in range(len(S)) if x in map_w and x in map_r]
    for st in stable + [len(S)]:
        j1, k1 = (map_w[st], map_r[st]) if st < len(S) else (len(W), len(R))
        sc, wc, rc = range(i, st), range(j, j1), range(k, k1)
        file_same = [s_as_file[x] for x in sc] == [w_keys[y] for y in wc]
        model_same = [s_keys[x] for x in sc] == [r_keys[z] for z in rc]
        if model_same:  # the model keeps these lines: keep the file's actual text
            out.extend((W[y], m.window_eols[y]) for y in wc)
        elif file_same:
            out.extend((transform(R[z]), None) for z in rc)
        elif [_as_file_key(R[z], shift) for z in rc] == [w_keys[y] for y in wc]:
            out.extend((W[y], m.window_eols[y]) for y in wc)  # both made the same change
        else:
            nearest = tuple((m.window_start + y + 1, W[y]) for y in wc)
            first = S[sc[0]] if len(sc) else "(nothing)"
            raise _Refusal(
                "conflict",
                f"the file differs from SEARCH exactly where REPLACE changes it: SEARCH has {first!r} but the "
                f"file's line{'s' if len(wc) != 1 else ''} "
                + (", ".join(f"{n}: {t!r}" for n, t in nearest) if nearest else "(none there)"),
                nearest,
            )
        if st < len(S):
            out.append((W[j1], m.window_eols[j1]))
            i, j, k = st + 1, j1 + 1, k1 + 1
    return out


def _as_file_key(line: str, shift: _Shift) -> str:
    shifted = _apply_shift(line, shift)
    return "\x00unshiftable\x00" if shifted is None else shifted.rstrip()


def _line_map(a: list[str], b: list[str], pair_replacements: bool = False) -> dict[int, int]:
    """Line i of `a` → line j of `b` for equal lines; with pair_replacements also for lines of a same-size
    replaced run (a line of SEARCH that the file holds in another version), so that a stale line next to a
    changed one does not turn the whole region into a conflict."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    mapping: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (pair_replacements and tag == "replace" and i2 - i1 == j2 - j1):
            for offset in range(i2 - i1):
                mapping[i1 + offset] = j1 + offset
    return mapping


# ---------------------------------------------------------------------------------------------------------
# Locating a hunk

_ELISION_RE = re.compile(r"^\s*(?:\.\.\.|…)\s*$|^\s*(?:#|//)\s*.*(?:\.\.\.|…).*$")


# Lines that can only mean "the model left lines out here" (never real code worth inserting).
_STRONG_ELISION_RE = re.compile(
    r"^\s*(?:#|//)\s*(?:\.\.\.|…)?\s*\(?\s*(?:existing|unchanged|rest of|remaining|same as before|omitted|"
    r"other|previous)\b.*$|^\s*(?:#|//)\s*(?:\.\.\.|…)\s*$",
    re.IGNORECASE,
)


def _is_elision(line: str) -> bool:
    return bool(_ELISION_RE.match(line))


def _is_strong_elision(line: str) -> bool:
    return bool(_STRONG_ELISION_RE.match(line)) and ("..." in line or "…" in line or "unchanged" in line.lower())


def _find_exact(lines: list[str], S: list[str]) -> list[int]:
    n = len(S)
    first = S[0]
    return [i for i in range(len(lines) - n + 1) if lines[i] == first and lines[i : i + n] == S]


def _find_whitespace(lines: list[str], S: list[str]) -> list[tuple[int, _Shift]]:
    n = len(S)
    keys = [s.strip() for s in S]
    first = keys[0]
    found: list[tuple[int, _Shift]] = []
    for i in range(len(lines) - n + 1):
        if lines[i].strip() != first:
            continue
        window = lines[i : i + n]
        if [w.strip() for w in window] != keys:
            continue
        shifts = {_shift_between(s, w) for s, w in zip(S, window) if s.strip()}
        if len(shifts) == 1 and None not in shifts:
            found.append((i, shifts.pop()))
    return found


def _trim_blank_edges(S: list[str], R: list[str]) -> tuple[list[str], list[str]]:
    """Drop blank lines at the edges of SEARCH that REPLACE keeps as blank lines at the same edge. A blank edge
    line that REPLACE changes stays, so that trimming never drops a line the model meant to change."""

    def leading_blanks(lines: list[str]) -> int:
        count = 0
        while count < len(lines) and not lines[count].strip():
            count += 1
        return count

    top = min(leading_blanks(S), leading_blanks(R))
    S, R = S[top:], R[top:]
    bottom = min(leading_blanks(S[::-1]), leading_blanks(R[::-1]))
    return S[: len(S) - bottom], R[: len(R) - bottom]


def _span(start: int, end: int) -> str:
    return f"line {start + 1}" if end - start <= 1 else f"lines {start + 1}–{end}"


class _Locator:
    """Finds where one hunk goes in one text and what the window becomes."""

    def __init__(self, doc: _Doc, hunk: Hunk, total: int) -> None:
        self.doc = doc
        self.lines = doc.lines
        self.hunk = hunk
        self.label = f"Block {hunk.index + 1}" + (f" of {total}" if total > 1 else "") + f" ({hunk.path})"
        self.S = _hunk_lines(hunk.search.replace("\r\n", "\n"))
        self.R = _hunk_lines(hunk.replace.replace("\r\n", "\n"))

    def error(
        self, reason: str, message: str, nearest: tuple[tuple[int, str], ...] = (), hint: str = ""
    ) -> HunkApplyError:
        text = f"{self.label}: {message}"
        if nearest:
            text += "\nNearest lines in the file:\n" + "\n".join(f"{n:>5} | {t}" for n, t in nearest)
        if hint:
            text += "\n" + hint
        return HunkApplyError(
            text, hunk_index=self.hunk.index, path=self.hunk.path, reason=reason, nearest=nearest, hint=hint
        )

    def plan(self) -> _Plan:
        S, R = self.S, self.R
        extra = sum(map(_is_strong_elision, R)) - sum(map(_is_strong_elision, S))
        if extra > 0:
            marker = next(r for r in R if _is_strong_elision(r))
            raise self.error(
                "elision",
                f"REPLACE holds {marker.strip()!r}, which stands for lines left out, but SEARCH does not leave "
                "those lines out; applying it would delete them.",
                hint="Copy every line into REPLACE that should stay, instead of a '...' placeholder.",
            )
        if not S:
            return _Plan(len(self.lines), len(self.lines), [(r, None) for r in R], "append", 1.0)
        found = self._basic(S, R, trimmed=False)
        if found is not None:
            return found
        S2, R2 = _trim_blank_edges(S, R)
        if S2 and S2 != S:
            found = self._basic(S2, R2, trimmed=True)
            if found is not None:
                return found
        if not S2:
            raise self.error(
                "not_found",
                "the SEARCH text holds only blank lines, which cannot be placed.",
                hint="Copy a few distinctive lines of the current file into SEARCH, or leave SEARCH empty to "
                "append to the end of the file.",
            )
        if any(_is_elision(s) for s in S2):
            found = self._elided(S2, R2)
            if found is not None:
                return found
        # The three-way merge copes with blank edge lines the file lacks, so the untrimmed text goes first.
        for s_lines, r_lines in ((S, R), (S2, R2)) if S2 != S else ((S, R),):
            found = self._fuzzy(s_lines, r_lines)
            if found is not None:
                return found
        raise self._not_found(S2)

    # -- exact and whitespace-tolerant

    def _basic(self, S: list[str], R: list[str], trimmed: bool) -> _Plan | None:
        exact = _find_exact(self.lines, S)
        if len(exact) > 1:
            raise self._ambiguous([(i, i + len(S)) for i in exact])
        loose = _find_whitespace(self.lines, S)
        if len(exact) == 1:
            # The same lines at another indentation are a rival: a model that shifted its indentation would
            # match the wrong one exactly.
            if len(loose) > 1:
                raise self._ambiguous([(i, i + len(S)) for i, _ in loose])
            start = exact[0]
            return _Plan(start, start + len(S), [(r, None) for r in R], "whitespace" if trimmed else "exact", 1.0)
        if len(loose) > 1:
            raise self._ambiguous([(i, i + len(S)) for i, _ in loose])
        if len(loose) == 1:
            start, shift = loose[0]
            out = self._merged(S, R, start, start + len(S), shift)
            return _Plan(start, start + len(S), out, "whitespace", 1.0)
        return None

    def _merged(self, S: list[str], R: list[str], start: int, end: int, shift: _Shift) -> list[_OutLine]:
        try:
            return _merge(
                _MergeInput(S, self.lines[start:end], self.doc.eols[start:end], R, shift, start)
            )
        except _Refusal as refusal:
            raise self.error(
                refusal.reason,
                f"at {_span(start, end)}: {refusal.message}.",
                refusal.nearest,
                hint="Copy the current lines exactly into SEARCH (including indentation), then change them in "
                "REPLACE.",
            ) from None

    # -- SEARCH with "..." lines standing for unchanged lines

    def _elided(self, S: list[str], R: list[str]) -> _Plan | None:
        s_parts = _split_elided(S)
        r_parts = _split_elided(R)
        if len(s_parts) == 1:  # only leading/trailing elisions: drop them and match the rest
            return self._basic(s_parts[0], r_parts[0] if len(r_parts) == 1 else R, trimmed=True)
        if len(r_parts) != len(s_parts):
            raise self.error(
                "elision",
                f"SEARCH skips lines with {len(s_parts) - 1} '...' line(s) but REPLACE has {len(r_parts) - 1}, so "
                "it is unclear what happens to the skipped lines.",
                hint="Do not elide lines with '...': copy every line of the region into SEARCH and REPLACE.",
            )
        candidates = [self._part_candidates(part) for part in s_parts]
        if any(not c for c in candidates):
            return None
        chains = _increasing_chains(candidates, [len(p) for p in s_parts], limit=ELISION_MAX_CHAINS + 1)
        if not chains:
            return None
        # Several ways to place the parts are harmless when they all give the same text (typically a generic
        # unchanged anchor line above the change); otherwise the hunk is ambiguous.
        plans: list[_Plan | None] = []
        for chain in chains[:ELISION_MAX_CHAINS]:
            try:
                plans.append(self._elided_plan(chain, s_parts, r_parts))
            except HunkApplyError:
                plans.append(None)
        results = {None if p is None else self._result_key(p) for p in plans}
        if len(chains) > ELISION_MAX_CHAINS or len(results) > 1 or None in results:
            part = next(k for k in range(len(s_parts)) if chains[0][k][0] != chains[1][k][0]) if len(chains) > 1 else 0
            first = next((line for line in s_parts[part] if line.strip()), s_parts[part][0])
            spots = sorted({c[part][0] for c in chains})[:3]
            raise self.error(
                "ambiguous",
                f"SEARCH leaves lines out with '...', and its part {part + 1} (starting {first.strip()!r}) fits "
                f"more than one place: " + ", ".join(f"line {a + 1}" for a in spots) + ".",
                tuple((a + 1, self.lines[a]) for a in spots),
                hint="Do not elide lines with '...': copy every line of the region into SEARCH, or add lines to "
                "make each part unique.",
            )
        return min((p for p in plans if p is not None), key=lambda p: p.end - p.start)

    def _elided_plan(
        self, chain: list[tuple[int, _Shift]], s_parts: list[list[str]], r_parts: list[list[str]]
    ) -> _Plan:
        out: list[_OutLine] = []
        for n, ((pos, shift), s_part, r_part) in enumerate(zip(chain, s_parts, r_parts)):
            end = pos + len(s_part)
            out.extend(self._merged(s_part, r_part, pos, end, shift))
            if n + 1 < len(chain):
                nxt = chain[n + 1][0]
                out.extend((self.lines[x], self.doc.eols[x]) for x in range(end, nxt))
        start, stop = chain[0][0], chain[-1][0] + len(s_parts[-1])
        given = sum(len(p) for p in s_parts)
        return _Plan(start, stop, out, "fuzzy", round(min(1.0, given / max(1, stop - start)), 3))

    def _result_key(self, plan: _Plan) -> str:
        return _splice(self.doc, plan).text()

    def _part_candidates(self, part: list[str]) -> list[tuple[int, _Shift]]:
        exact = _find_exact(self.lines, part)
        if exact:
            return [(i, _NO_SHIFT) for i in exact]
        return _find_whitespace(self.lines, part)

    # -- bounded fuzzy

    def _windows(self, S: list[str], need: int) -> list[tuple[int, int, int]]:
        """(hits, start, size) of windows of len(S)±1 lines holding at least `need` of SEARCH's lines."""
        keys = {s.strip() for s in S if s.strip()}
        prefix = [0]
        for line in self.lines:
            stripped = line.strip()
            prefix.append(prefix[-1] + (1 if stripped and stripped in keys else 0))
        n, total = len(S), len(self.lines)
        out = []
        for size in (n, n - 1, n + 1):
            if size < 1 or size > total:
                continue
            for start in range(total - size + 1):
                hits = prefix[start + size] - prefix[start]
                if hits >= need:
                    out.append((hits, start, size))
        out.sort(key=lambda w: (-w[0], w[2] != n, w[1]))
        return out

    def _scored(self, S: list[str], windows: list[tuple[int, int, int]]) -> list[tuple[float, int, int]]:
        target = [s.strip() for s in S]
        scored = []
        for _, start, size in windows:
            ratio = _similarity(target, [w.strip() for w in self.lines[start : start + size]])
            if ratio >= FUZZY_THRESHOLD:
                scored.append((ratio, start, size))
        return scored

    def _fuzzy(self, S: list[str], R: list[str]) -> _Plan | None:
        nonblank = [s for s in S if s.strip()]
        if len(nonblank) < FUZZY_MIN_LINES:
            return None
        windows = self._windows(S, need=max(1, math.ceil(0.5 * len(nonblank))))
        if len(windows) > FUZZY_MAX_WINDOWS:
            return None  # too generic to place with confidence; reported as not found with nearest lines
        scored = self._scored(S, windows)
        if not scored:
            return None
        scored.sort(key=lambda c: (-c[0], c[2] != len(S), c[1]))
        clusters: list[list[tuple[float, int, int]]] = []
        for cand in scored:
            for cluster in clusters:
                best = cluster[0]
                if cand[1] < best[1] + best[2] and best[1] < cand[1] + cand[2]:
                    cluster.append(cand)
                    break
            else:
                clusters.append([cand])
        if len(clusters) > 1:
            raise self._ambiguous([(c[0][1], c[0][1] + c[0][2]) for c in clusters], fuzzy=True)
        first_error: HunkApplyError | None = None
        for ratio, start, size in clusters[0]:
            window = self.lines[start : start + size]
            aligned = _line_map([x.strip() for x in S], [w.strip() for w in window])
            shift = _mode_shift([(S[a], window[b]) for a, b in aligned.items()])
            try:
                out = self._merged(S, R, start, start + size, shift)
            except HunkApplyError as err:
                first_error = first_error or err
                continue
            return _Plan(start, start + size, out, "fuzzy", round(ratio, 3))
        assert first_error is not None
        raise first_error

    # -- errors

    def _ambiguous(self, spans: list[tuple[int, int]], fuzzy: bool = False) -> HunkApplyError:
        shown = spans[:5]
        nearest = tuple((a + 1, self.lines[a]) for a, _ in shown)
        where = ", ".join(_span(a, b) for a, b in shown) + (f" and {len(spans) - 5} more" if len(spans) > 5 else "")
        how = "nearly matches" if fuzzy else "matches"
        return self.error(
            "ambiguous",
            f"the SEARCH text {how} {len(spans)} places ({where}), so it is unclear which one to change.",
            nearest,
            hint="Add unchanged lines before or after the change to SEARCH (and REPLACE) until it matches one place.",
        )

    def _not_found(self, S: list[str]) -> HunkApplyError:
        best: tuple[float, int, int] | None = None
        windows = self._windows(S, need=1)[:40]
        target = [s.strip() for s in S]
        for _, start, size in windows:
            ratio = _similarity(target, [w.strip() for w in self.lines[start : start + size]])
            if best is None or ratio > best[0]:
                best = (ratio, start, size)
        hint = (
            "Copy the SEARCH lines exactly from the current file (same text, same indentation), or leave SEARCH "
            "empty to append to the end of the file."
        )
        if any(_is_elision(s) for s in S):
            hint += " Do not skip lines with '...': each part around a '...' line must match the file exactly."
        if best is None:
            first = next(s for s in S if s.strip())
            close = difflib.get_close_matches(
                first.strip(), [line.strip() for line in self.lines], n=3, cutoff=0.5
            )
            nearest = tuple(
                (n + 1, line) for n, line in enumerate(self.lines) if line.strip() in close
            )[:3]
            return self.error(
                "not_found",
                "the SEARCH text was not found in the file, and no block of lines resembles it"
                + ("; the lines most like its first line are below." if nearest else "."),
                nearest,
                hint,
            )
        ratio, start, size = best
        window = self.lines[start : start + size]
        nearest = tuple((start + n + 1, line) for n, line in enumerate(window))
        difference = ""
        for n, (s, w) in enumerate(zip(S, window)):
            if s.rstrip() != w.rstrip():
                difference = (
                    f" The first difference: SEARCH line {n + 1} is {s!r} but file line {start + n + 1} is {w!r}."
                )
                break
        return self.error(
            "not_found",
            f"the SEARCH text was not found in the file; the most similar place is {_span(start, start + size)} "
            f"(similarity {ratio:.2f}).{difference}",
            nearest,
            hint,
        )


def _similarity(a: list[str], b: list[str]) -> float:
    """difflib's ratio over the characters of two line lists (newlines included), computed line-aware: equal
    lines count whole, lines of a replaced run are compared pairwise. Close to the plain character ratio and
    much cheaper on long, similar texts."""
    total = sum(len(x) + 1 for x in a) + sum(len(y) + 1 for y in b)
    if not total:
        return 1.0
    matched = 0
    pair = difflib.SequenceMatcher(None, autojunk=False)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            matched += sum(len(x) + 1 for x in a[i1:i2])
        elif tag == "replace":
            for x, y in zip(a[i1:i2], b[j1:j2]):
                pair.set_seqs(x, y)
                matched += sum(m.size for m in pair.get_matching_blocks()) + 1
    return 2.0 * matched / total


def _split_elided(lines: list[str]) -> list[list[str]]:
    """Parts of `lines` between elision lines; leading/trailing elisions and empty parts dropped."""
    parts: list[list[str]] = [[]]
    for line in lines:
        if _is_elision(line):
            if parts[-1]:
                parts.append([])
        else:
            parts[-1].append(line)
    return [p for p in parts if p] or [[]]


def _increasing_chains(
    candidates: list[list[tuple[int, _Shift]]], sizes: list[int], limit: int
) -> list[list[tuple[int, _Shift]]]:
    """Up to `limit` ways to pick one candidate per part with each part starting after the previous one ends."""
    results: list[list[tuple[int, _Shift]]] = []

    def walk(part: int, min_start: int, chain: list[tuple[int, _Shift]]) -> None:
        if len(results) >= limit:
            return
        if part == len(candidates):
            results.append(list(chain))
            return
        for cand in candidates[part]:
            if cand[0] >= min_start:
                chain.append(cand)
                walk(part + 1, cand[0] + sizes[part], chain)
                chain.pop()
                if len(results) >= limit:
                    return

    walk(0, 0, [])
    return results


# ---------------------------------------------------------------------------------------------------------
# Applying


def _splice(doc: _Doc, plan: _Plan) -> _Doc:
    eol = doc.dominant_eol()
    lines = doc.lines[: plan.start]
    eols = doc.eols[: plan.start]
    at_end = plan.end == len(doc.lines)
    had_final_newline = not doc.lines or doc.eols[-1] != ""
    if plan.kind == "append" and eols and eols[-1] == "":
        eols[-1] = eol
    for text, line_eol in plan.out:
        lines.append(text)
        eols.append(eol if line_eol is None else line_eol)
    lines.extend(doc.lines[plan.end :])
    eols.extend(doc.eols[plan.end :])
    # A hunk that reaches the end of a file without a final newline keeps it that way.
    if at_end and not had_final_newline and plan.kind != "append" and eols:
        eols[-1] = ""
    return _Doc(lines, eols)


def _plan_for(doc: _Doc, hunk: Hunk, total: int) -> _Plan:
    return _Locator(doc, hunk, total).plan()


def apply_hunks(source: str, hunks: Sequence[Hunk]) -> ApplyResult:
    """Apply hunks in order to the evolving text, all or nothing (raises EditApplyError; paths are not checked)."""
    original = _Doc.from_text(source)
    doc = original
    matches: list[Match] = []
    total = len(hunks)
    for position, hunk in enumerate(hunks):
        try:
            plan = _plan_for(doc, hunk, total)
        except HunkApplyError as err:
            if position > 0:
                _raise_if_stale_after(original, hunks, position, err, total)
            raise
        if plan.kind == "append":
            start, end = len(doc.lines) + 1, len(doc.lines)
        else:
            start, end = plan.start + 1, plan.end
        matches.append(Match(hunk.index, plan.kind, start, end, plan.similarity))
        doc = _splice(doc, plan)
    return ApplyResult(doc.text(), tuple(matches))


def _raise_if_stale_after(
    original: _Doc, hunks: Sequence[Hunk], position: int, err: HunkApplyError, total: int
) -> None:
    """When a hunk applied to the original text but not after the ones before it, say which one broke it."""
    hunk = hunks[position]
    try:
        _plan_for(original, hunk, total)
    except HunkApplyError:
        return
    doc = original
    for earlier in hunks[:position]:
        plan = _plan_for(doc, earlier, total)
        doc = _splice(doc, plan)
        try:
            _plan_for(doc, hunk, total)
        except HunkApplyError:
            changed = _span(plan.start, plan.end) if plan.kind != "append" else "the end of the file"
            message = (
                f"Block {hunk.index + 1} ({hunk.path}) no longer applies after block {earlier.index + 1} was "
                f"applied: block {earlier.index + 1} changed {changed}, which block {hunk.index + 1}'s SEARCH "
                f"relies on ({err.reason.replace('_', ' ')} afterwards)."
            )
            if err.nearest:
                message += f"\nNearest lines after block {earlier.index + 1}:\n" + "\n".join(
                    f"{n:>5} | {t}" for n, t in err.nearest
                )
            hint = (
                f"Merge blocks {earlier.index + 1} and {hunk.index + 1} into one block, or make block "
                f"{hunk.index + 1}'s SEARCH match the text as it is after block {earlier.index + 1}."
            )
            raise HunkApplyError(
                message + "\n" + hint, hunk_index=hunk.index, path=hunk.path, reason="stale_after",
                nearest=err.nearest, hint=hint,
            ) from None
    return


def _resolve_path(path: str, files: Mapping[str, str]) -> str | None:
    wanted = _clean_path(path)
    by_clean = {_clean_path(name): name for name in files}
    if wanted in by_clean:
        return by_clean[wanted]
    # The model named the file with a different prefix: accept one unambiguous suffix match.
    tails = [
        name for clean, name in by_clean.items()
        if clean.endswith("/" + wanted) or wanted.endswith("/" + clean)
    ]
    return tails[0] if len(tails) == 1 else None


def apply_to_files(files: Mapping[str, str], hunks: Sequence[Hunk]) -> dict[str, str]:
    """Apply hunks to several files, all or nothing. Returns every file (changed or not, plus created ones)."""
    result = dict(files)
    order: list[str] = []
    grouped: dict[str, list[Hunk]] = {}
    for hunk in hunks:
        name = _resolve_path(hunk.path, files)
        if name is None:
            if hunk.search:
                known = ", ".join(sorted(files)) or "none"
                raise HunkApplyError(
                    f"Block {hunk.index + 1} edits {hunk.path!r}, which is not one of the files (known: {known}).\n"
                    "Name one of those files on the line before the block, or leave SEARCH empty to create a "
                    "new file.",
                    hunk_index=hunk.index, path=hunk.path, reason="missing_file",
                )
            name = _clean_path(hunk.path)
        if name not in grouped:
            grouped[name] = []
            order.append(name)
        grouped[name].append(hunk)
    for name in order:
        result[name] = apply_hunks(result.get(name, ""), grouped[name]).text
    return result


def hunk_preview(source: str, hunk: Hunk) -> list[str]:
    """Unified-diff style lines ('-', '+', ' ' + text) of what the hunk does at its match in `source`."""
    doc = _Doc.from_text(source)
    plan = _plan_for(doc, hunk, 1)
    old = doc.lines[plan.start : plan.end]
    new = [text for text, _ in plan.out]
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            lines.extend(" " + line for line in old[i1:i2])
        else:
            lines.extend("-" + line for line in old[i1:i2])
            lines.extend("+" + line for line in new[j1:j2])
    return lines


def format_apply_error_for_model(error: EditApplyError) -> str:
    """The feedback sent back to the model when its edit did not apply."""
    parts = [
        "Your edit could not be applied, so none of its blocks were applied and the file is unchanged.",
        "",
    ]
    if isinstance(error, HunkApplyError):
        parts.append(str(error))
    else:
        parts.append(str(error))
    parts += [
        "",
        "Reply with corrected SEARCH/REPLACE blocks for all of your changes (including the ones that were fine). "
        "Each SEARCH must copy the current file's lines exactly — same text, same indentation, no '...' to skip "
        "lines — and match exactly one place; add neighbouring unchanged lines to make it unique.",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Building blocks from two texts (oracle provider, benchmarks)

_FENCE_LANG = {".py": "python", ".sh": "bash", ".toml": "toml", ".md": "markdown", ".json": "json", ".yaml": "yaml"}


def blocks_from_texts(old: str, new: str, path: str, context_lines: int = 1) -> str:
    """SEARCH/REPLACE text whose application to `old` gives `new` (one block per changed region).

    Each SEARCH is unique in `old` and in the text as it is when the block applies (context grows until it is).
    Limits of the format: a change to line endings only, or to whether the last line ends with a newline, cannot
    be expressed. Returns "" when the texts are equal.
    """
    if old == new:
        return ""
    a = _Doc.from_text(old).lines
    b = _Doc.from_text(new).lines
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    lang = _FENCE_LANG.get(suffix, "")
    if not a:
        return _format_block(path, lang, [], b)
    changes = [
        [i1, i2, j1, j2]
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        if tag != "equal"
    ]
    regions = [_Region(i1, i2, j1, j2, max(context_lines, 0)) for i1, i2, j1, j2 in changes]
    regions = _settle_regions(regions, a, b)
    return "\n".join(_format_block(path, lang, a[r.lo : r.hi], b[r.jlo : r.jhi]) for r in regions)


@dataclass
class _Region:
    i1: int
    i2: int
    j1: int
    j2: int
    ctx: int
    lo: int = 0
    hi: int = 0
    jlo: int = 0
    jhi: int = 0

    def bound(self, n_old: int) -> None:
        ctx = max(self.ctx, 1) if self.i1 == self.i2 else self.ctx  # a pure insertion needs an anchor line
        self.lo = max(0, self.i1 - ctx)
        self.hi = min(n_old, self.i2 + ctx)
        self.jlo = self.j1 - (self.i1 - self.lo)
        self.jhi = self.j2 + (self.hi - self.i2)


def _settle_regions(regions: list[_Region], a: list[str], b: list[str]) -> list[_Region]:
    while True:
        for region in regions:
            region.bound(len(a))
        merged: list[_Region] = []
        for region in regions:
            if merged and region.lo < merged[-1].hi:
                prev = merged[-1]
                merged[-1] = _Region(prev.i1, region.i2, prev.j1, region.j2, max(prev.ctx, region.ctx))
                merged[-1].bound(len(a))
            else:
                merged.append(region)
        if len(merged) != len(regions):
            regions = merged
            continue
        grown = False
        for n, region in enumerate(regions):
            search = a[region.lo : region.hi]
            evolving = (b[: regions[n - 1].jhi] + a[regions[n - 1].hi :]) if n else a
            whole = region.lo == 0 and region.hi == len(a)
            # Unique even with whitespace ignored, as apply_hunks requires of an exact match.
            unique = (
                any(s.strip() for s in search)
                and len(_find_whitespace(a, search)) == 1
                and len(_find_whitespace(evolving, search)) == 1
            )
            if not unique and not whole:
                region.ctx += 1
                grown = True
        if not grown:
            return regions


def _format_block(path: str, lang: str, search: list[str], replace: list[str]) -> str:
    return (
        f"{path}\n```{lang}\n<<<<<<< SEARCH\n{_lines_to_text(search)}=======\n{_lines_to_text(replace)}"
        ">>>>>>> REPLACE\n```\n"
    )
