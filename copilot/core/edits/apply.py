"""Applying hunks: to one text in order, or to a set of files, all or nothing."""

from __future__ import annotations

import difflib
from typing import Mapping, Sequence

from copilot.core.edits.match import _Locator, _Plan, _span, splice_plan as _splice
from copilot.core.edits.model import ApplyResult, Hunk, HunkApplyError, Match
from copilot.core.edits.paths import UnsafePath, plain_relative_path
from copilot.core.edits.text import Doc
from copilot.core.errors import EditApplyError


def _plan_for(doc: Doc, hunk: Hunk, total: int, floor: int = 0) -> _Plan:
    return _Locator(doc, hunk, total, floor).plan()


def apply_hunks(source: str, hunks: Sequence[Hunk]) -> ApplyResult:
    """Apply hunks in order to the evolving text, all or nothing (raises HunkApplyError; paths are not checked)."""
    original = Doc.from_text(source)
    doc = original
    matches: list[Match] = []
    total = len(hunks)
    floor = 0  # where the previous hunk ended: an ordered format (patch) looks for the next one after it
    for position, hunk in enumerate(hunks):
        try:
            plan = _plan_for(doc, hunk, total, floor)
        except HunkApplyError as err:
            if position > 0:
                _raise_if_stale_after(original, hunks, position, err, total)
            raise
        if plan.start == plan.end:
            start, end = plan.start + 1, plan.start
        else:
            start, end = plan.start + 1, plan.end
        matches.append(Match(hunk.index, plan.kind, start, end, plan.similarity))
        doc = _splice(doc, plan)
        floor = plan.start + len(plan.out)
    return ApplyResult(doc.text(), tuple(matches))


def _raise_if_stale_after(original: Doc, hunks: Sequence[Hunk], position: int, err: HunkApplyError,
                          total: int) -> None:
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
            changed = _span(plan.start, plan.end) if plan.start != plan.end else "the lines around its insertion"
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


def _clean(path: str) -> str:
    try:
        return plain_relative_path(path)
    except UnsafePath:
        return path.strip()


def resolve_path(path: str, files: Mapping[str, str]) -> str | None:
    """The known file a hunk's path names: exactly, or by one unambiguous suffix (a model that named the file
    with a different folder prefix)."""
    wanted = _clean(path)
    by_clean = {_clean(name): name for name in files}
    if wanted in by_clean:
        return by_clean[wanted]
    tails = [
        name for clean, name in by_clean.items()
        if clean.endswith("/" + wanted) or wanted.endswith("/" + clean)
    ]
    return tails[0] if len(tails) == 1 else None


def apply_to_files(files: Mapping[str, str], hunks: Sequence[Hunk]) -> dict[str, str]:
    """Apply hunks to several files, all or nothing. Returns every file (changed or not, plus created ones)."""
    return apply_to_files_with_matches(files, hunks)[0]


def apply_to_files_with_matches(files: Mapping[str, str],
                                hunks: Sequence[Hunk]) -> tuple[dict[str, str], tuple[Match, ...]]:
    result = dict(files)
    order: list[str] = []
    grouped: dict[str, list[Hunk]] = {}
    for hunk in hunks:
        name = resolve_path(hunk.path, files)
        if name is None:
            if hunk.mode != "create":
                known = ", ".join(sorted(files)) or "none"
                raise HunkApplyError(
                    f"Block {hunk.index + 1} edits {hunk.path!r}, which is not one of the files (known: {known}).\n"
                    "Name one of those files on the line before the block, or leave SEARCH empty to create a "
                    "new file.",
                    hunk_index=hunk.index, path=hunk.path, reason="missing_file",
                )
            try:
                name = plain_relative_path(hunk.path)
            except UnsafePath as exc:
                raise HunkApplyError(f"Block {hunk.index + 1} names {hunk.path!r}: {exc}.", hunk_index=hunk.index,
                                     path=hunk.path, reason="path") from None
        if name not in grouped:
            grouped[name] = []
            order.append(name)
        grouped[name].append(hunk)
    matches: list[Match] = []
    for name in order:
        applied = apply_hunks(result.get(name, ""), grouped[name])
        result[name] = applied.text
        matches.extend(applied.matches)
    matches.sort(key=lambda m: m.hunk_index)
    return result, tuple(matches)


def hunk_preview(source: str, hunk: Hunk) -> list[str]:
    """Unified-diff style lines ('-', '+', ' ' + text) of what the hunk does at its match in `source`."""
    doc = Doc.from_text(source)
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


def hunk_span(source: str, hunk: Hunk) -> tuple[int, int] | None:
    """1-based (first, last) line numbers of the hunk's match in `source` (an insertion: (n+1, n)), or None."""
    try:
        plan = _plan_for(Doc.from_text(source), hunk, 1)
    except EditApplyError:
        return None
    return plan.start + 1, plan.end
