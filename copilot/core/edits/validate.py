"""What must not land, whatever the match: checks on what a hunk writes and on the files that result.

Each refusal is a HunkApplyError with reason "content" or "compile" and one plain reason: conflict-marker
lines, NULs, control characters, ANSI escapes, bidi overrides or invisible characters in REPLACE, a line longer
than the limit, a placeholder for left-out lines in the result, a Python file that no longer compiles.
Characters or lines the file already had are not the model's doing and pass.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from functools import lru_cache
from typing import Mapping, Sequence

from copilot.core.edits.match import is_elision
from copilot.core.edits.model import EditLimits, Hunk, HunkApplyError
from copilot.core.edits.text import first_forbidden, hunk_lines

_CONFLICT_MARKER = re.compile(r"^\s*(?:<{5,9}|>{5,9})(?:\s.*)?$|^\s*={5,9}\s*$")


def _refuse(hunk: Hunk, message: str, hint: str, reason: str = "content") -> HunkApplyError:
    return HunkApplyError(f"Block {hunk.index + 1} ({hunk.path}): {message}\n{hint}", hunk_index=hunk.index,
                          path=hunk.path, reason=reason, hint=hint)


def check_hunks(hunks: Sequence[Hunk], limits: EditLimits) -> None:
    for hunk in hunks:
        check_hunk(hunk, limits)


def check_hunk(hunk: Hunk, limits: EditLimits) -> None:
    """Refuse a hunk whose REPLACE brings in text that must never be written."""
    search_lines = set(hunk_lines(hunk.search))
    known_chars = set(hunk.search) | set(hunk.anchor or "")
    for number, line in enumerate(hunk_lines(hunk.replace), start=1):
        if line in search_lines:
            continue
        if _CONFLICT_MARKER.match(line):
            raise _refuse(
                hunk, f"REPLACE line {number} is a merge-conflict marker ({line.strip()[:12]!r}); it would be "
                "written into the file.",
                "Remove the marker lines: REPLACE holds only the new lines of the file.",
            )
        bad = first_forbidden(line, allowed="".join(known_chars))
        if bad is not None:
            offset, _, why = bad
            raise _refuse(
                hunk, f"REPLACE line {number} holds {why} at column {offset + 1}.",
                "Write plain text only: no control characters, escape sequences, bidi overrides or invisible "
                "characters.",
            )
        if len(line) > limits.max_line_chars:
            raise _refuse(
                hunk, f"REPLACE line {number} is {len(line):,} characters long, over the limit of "
                f"{limits.max_line_chars:,} (edit_max_line_chars).",
                "Break the line up, or load long data from a file the run already has.",
            )


def check_results(before: Mapping[str, str], after: Mapping[str, str], hunks: Sequence[Hunk],
                  limits: EditLimits) -> None:
    """Refuse results that hold left-out-lines placeholders the file did not have, or Python that no longer
    compiles (when it compiled before)."""
    for path, text in after.items():
        old = before.get(path)
        if old == text:
            continue
        hunk = next((h for h in hunks if h.path == path), None) or next((h for h in hunks), None)
        if hunk is None:
            continue
        _check_placeholders(hunk, path, old or "", text)
        if limits.compile_python and path.endswith(".py"):
            _check_compiles(hunk, path, old, text)


def _check_placeholders(hunk: Hunk, path: str, old: str, new: str) -> None:
    had = Counter(line.strip() for line in old.splitlines() if is_elision(line))
    for number, line in enumerate(new.splitlines(), start=1):
        if is_elision(line):
            key = line.strip()
            if had[key] > 0:
                had[key] -= 1
                continue
            raise _refuse(
                hunk, f"the result would hold {line.strip()!r} at line {number} of {path}, a placeholder for lines "
                "left out; applying it would lose those lines.",
                "Write out every line that should stay instead of a '...' placeholder.",
            )


def _compile_error(path: str, text: str) -> SyntaxError | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(text, path, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return exc
        except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes, absurd nesting
            error = SyntaxError(str(exc))
            error.lineno = None
            return error
    return None


@lru_cache(maxsize=32)
def _compiles(path: str, text: str) -> bool:
    """Whether the file as it was compiles (cached: the same current file is checked for every answer)."""
    return _compile_error(path, text) is None


def _check_compiles(hunk: Hunk, path: str, old: str | None, new: str) -> None:
    if old is not None and not _compiles(path, old):
        return  # it did not compile before either: not this edit's doing
    error = _compile_error(path, new)
    if error is None:
        return
    where = f"line {error.lineno}" if error.lineno else "somewhere"
    source = ""
    if error.lineno and 0 < error.lineno <= new.count("\n") + 1:
        source = f": {new.splitlines()[error.lineno - 1].strip()[:120]!r}"
    raise _refuse(
        hunk, f"after this edit {path} no longer compiles ({error.msg} at {where}{source}).",
        "Check indentation and brackets around the change; REPLACE must leave valid Python.",
        reason="compile",
    )
